import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  actionMatchesEvent,
  ConfigError,
  defaultWorkflowConfig,
  parseWorkflowConfig,
  type ConfigDiagnostic,
  type WorkflowAction,
} from './workflowConfig.ts';
import { HearthError } from '../errors.ts';

/** Joins lines with "\n", so a test's line numbers are its array indexes + 1. */
const yaml = (...lines: string[]) => lines.join('\n') + '\n';

function errorsOf(text: string, file = 'hearth.yaml'): ConfigDiagnostic[] {
  try {
    parseWorkflowConfig(text, file);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e.diagnostics;
  }
  assert.fail('expected a ConfigError');
}

const diag = (line: number, column: number, message: string, file = 'hearth.yaml'): ConfigDiagnostic => ({
  file,
  line,
  column,
  message,
});

/** The normalized action every field of which is at its default. */
function baseAction(name: string, run: string[]): WorkflowAction {
  return {
    name,
    steps: run.map((r) => ({ run: r })),
    env: {},
    bazelWorkspaceDir: '',
    gitCleanExclude: [],
    gitFetchFilters: ['blob:none'],
    os: 'linux',
    arch: 'amd64',
    selfHosted: false,
    priority: 0,
    resourceRequests: {},
    platformProperties: {},
    allowConcurrentRuns: false,
  };
}

describe('parseWorkflowConfig: valid files', () => {
  it('normalizes a file that sets every field', () => {
    const text = yaml(
      'actions:',
      '  - name: "Test all"',
      '    triggers:',
      '      push:',
      '        branches: [main, "release/*"]',
      '        tags: ["v*"]',
      '      pull_request:',
      '        branches: ["*", "!wip/*"]',
      '        types: [opened, synchronize, ready_for_review]',
      '        merge_with_base: false',
      '        merge_with_base_interval: 30m',
      '        force_manual_merge_with_base: true',
      '      schedule:',
      '        crons: ["0 3 * * *"]',
      '    steps:',
      '      - run: bazel test //...',
      '      - run: |',
      '          echo one',
      '          echo two',
      '    env:',
      '      CI: true',
      '      VERSION: 1.10',
      '    timeout: 1h30m',
      '    bazel_workspace_dir: ./sub/ws/',
      '    git_clean_exclude: [node_modules, .cache]',
      '    git_fetch_filters: []',
      '    git_fetch_depth: 50',
      '    os: linux',
      '    arch: arm64',
      '    pool: big',
      '    self_hosted: yes',
      '    container_image: ubuntu-22.04',
      '    user: root',
      '    priority: -2',
      '    visibility: PUBLIC',
      '    resource_requests: {memory: 16GB, cpu: 8000m, disk: 100000000000}',
      '    platform_properties:',
      '      remote-snapshot-save-policy: first-non-default-ref',
      '      EstimatedComputeUnits: 4',
      '    bazel_use_cli: false',
      '    allow_concurrent_runs: true',
      '    allow_concurrent_runs_on_branches: [main, "release/*"]',
    );
    const { config, warnings } = parseWorkflowConfig(text, 'hearth.yaml');
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
      actions: [
        {
          name: 'Test all',
          triggers: {
            push: { branches: ['main', 'release/*'], tags: ['v*'] },
            pullRequest: {
              branches: ['*', '!wip/*'],
              types: ['opened', 'synchronize', 'ready_for_review'],
              mergeWithBase: false,
              mergeWithBaseIntervalMs: 1_800_000,
              forceManualMergeWithBase: false, // only meaningful when merging with base
            },
            schedule: { crons: ['0 3 * * *'] },
          },
          steps: [{ run: 'bazel test //...' }, { run: 'echo one\necho two\n' }],
          env: { CI: 'true', VERSION: '1.10' },
          timeout: '1h30m',
          timeoutMs: 5_400_000,
          bazelWorkspaceDir: 'sub/ws',
          gitCleanExclude: ['node_modules', '.cache'],
          gitFetchFilters: [],
          gitFetchDepth: 50,
          os: 'linux',
          arch: 'arm64',
          pool: 'big',
          selfHosted: true,
          containerImage: 'ubuntu-22.04',
          user: 'root',
          priority: -2,
          visibility: 'PUBLIC',
          resourceRequests: { memoryBytes: 16 * 1024 ** 3, cpuMillis: 8000, diskBytes: 100_000_000_000 },
          platformProperties: { 'remote-snapshot-save-policy': 'first-non-default-ref', EstimatedComputeUnits: '4' },
          bazelUseCli: false,
          allowConcurrentRuns: true,
          allowConcurrentRunsOnBranches: ['main', 'release/*'],
        },
      ],
    });
  });

  it('fills defaults for a minimal action', () => {
    const text = yaml(
      'actions:',
      '  - name: Build',
      '    triggers:',
      '      pull_request:',
      '        branches: ["*"]',
      '    steps:',
      '      - run: bazel build //...',
    );
    const { config, warnings } = parseWorkflowConfig(text, 'hearth.yaml');
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.actions, [
      {
        ...baseAction('Build', ['bazel build //...']),
        triggers: { pullRequest: { branches: ['*'], mergeWithBase: true, forceManualMergeWithBase: true } },
      },
    ]);
  });

  it('accepts a legacy buildbuddy.yaml with bazel_commands', () => {
    const text = yaml(
      'actions:',
      '  - name: "Test all targets"',
      '    triggers:',
      '      push:',
      '        branches:',
      '          - "main"',
      '      pull_request:',
      '        branches:',
      '          - "*"',
      '    bazel_commands:',
      '      - "test //... --config=ci"',
      '      - "bazelisk build //:all"',
      '      - "bazel run //tools:lint"',
      '      - "bazel-diff generate"',
    );
    const { config, warnings } = parseWorkflowConfig(text, 'buildbuddy.yaml');
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.actions, [
      {
        ...baseAction('Test all targets', [
          'bazel test //... --config=ci',
          'bazelisk build //:all',
          'bazel run //tools:lint',
          'bazel bazel-diff generate',
        ]),
        triggers: {
          push: { branches: ['main'], tags: [] },
          pullRequest: { branches: ['*'], mergeWithBase: true, forceManualMergeWithBase: true },
        },
      },
    ]);
  });

  it('keeps scalars as their source text', () => {
    const text = yaml(
      'actions:',
      '  - name: 1.0',
      '    triggers:',
      '      push:',
      '        branches: [1.10, on, 010, yes, ~, null, true, 0x1F, 1e3, "q\\"d", \'it\'\'s\']',
      '    steps:',
      '      - run: 007',
      '    env: {A: 1.10, B: off, C: ~, D: "", E:}',
      '    platform_properties: {x: 1.50}',
    );
    const { config } = parseWorkflowConfig(text, 'hearth.yaml');
    const action = config.actions[0]!;
    assert.equal(action.name, '1.0');
    assert.deepEqual(action.triggers?.push?.branches, [
      '1.10',
      'on',
      '010',
      'yes',
      '~',
      'null',
      'true',
      '0x1F',
      '1e3',
      'q"d',
      "it's",
    ]);
    assert.deepEqual(action.steps, [{ run: '007' }]);
    assert.deepEqual(action.env, { A: '1.10', B: 'off', C: '~', D: '', E: '' });
    assert.deepEqual(action.platformProperties, { x: '1.50' });
  });

  it('treats a null field as not set', () => {
    const text = yaml(
      'actions:',
      '  - name: A',
      '    triggers:',
      '      push: {branches: [main]}',
      '    steps: [{run: make}]',
      '    timeout:',
      '    os: ~',
      '    env: null',
    );
    const { config } = parseWorkflowConfig(text, 'hearth.yaml');
    assert.deepEqual(config.actions[0], {
      ...baseAction('A', ['make']),
      triggers: { push: { branches: ['main'], tags: [] } },
    });
  });

  it('expands YAML merge keys; explicit keys win', () => {
    const text = yaml(
      'x-defaults: &defaults',
      '  timeout: 10m',
      '  os: linux',
      '  steps: [{run: bazel test //...}]',
      'actions:',
      '  - <<: *defaults',
      '    name: A',
      '    timeout: 20m',
      '    triggers: {push: {branches: [main]}}',
      '  - <<: *defaults',
      '    name: B',
      '    triggers: {push: {branches: [dev]}}',
    );
    const { config, warnings } = parseWorkflowConfig(text, 'hearth.yaml');
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      config.actions.map((a) => [a.name, a.timeout, a.timeoutMs, a.steps]),
      [
        ['A', '20m', 1_200_000, [{ run: 'bazel test //...' }]],
        ['B', '10m', 600_000, [{ run: 'bazel test //...' }]],
      ],
    );
  });
});

describe('parseWorkflowConfig: warnings', () => {
  it('warns about unknown keys at their line:column, with a suggestion', () => {
    const text = yaml(
      'actions:',
      '  - name: A',
      '    triggers:',
      '      push:',
      '        branches: [main]',
      '        brnches: [dev]',
      '    steps:',
      '      - run: make',
      '        name: build',
      '    tiemout: 1h',
      'version: 2',
    );
    const { config, warnings } = parseWorkflowConfig(text, 'hearth.yaml');
    assert.deepEqual(warnings, [
      diag(6, 9, 'actions[0].triggers.push.brnches is not a known field and is ignored (did you mean "branches"?)'),
      diag(9, 9, 'actions[0].steps[0].name is not a known field and is ignored'),
      diag(10, 5, 'actions[0].tiemout is not a known field and is ignored (did you mean "timeout"?)'),
      diag(11, 1, 'version is not a known field and is ignored'),
    ]);
    assert.equal(config.actions[0]!.timeout, undefined);
  });

  it('warns about actions and triggers that can never fire, and odd patterns', () => {
    const text = yaml(
      'actions:',
      '  - name: Manual',
      '    steps: [{run: make}]',
      '  - name: Odd',
      '    triggers:',
      '      push: {branches: []}',
      '      pull_request: {branches: ["a*b*"]}',
      '    steps: [{run: make}]',
    );
    const { warnings } = parseWorkflowConfig(text, 'hearth.yaml');
    assert.deepEqual(warnings, [
      diag(2, 5, 'actions[0] has no triggers: it runs only when dispatched manually'),
      diag(6, 13, 'actions[1].triggers.push has no branches or tags: it never fires'),
      diag(
        7,
        33,
        'actions[1].triggers.pull_request.branches[0]: only the first "*" in "a*b*" is a wildcard; later "*" characters must match literally, and git refs cannot contain "*"',
      ),
    ]);
  });

  it('warns about an empty actions list', () => {
    const { config, warnings } = parseWorkflowConfig('actions: []\n', 'hearth.yaml');
    assert.deepEqual(config, { actions: [] });
    assert.deepEqual(warnings, [diag(1, 10, 'actions is empty: no workflow will run')]);
  });
});

describe('parseWorkflowConfig: errors', () => {
  it('reports a wrong type at the offending node, in the documented message format', () => {
    const text = yaml(
      'actions:',
      '  - name: Test',
      '    triggers:',
      '      push:',
      '        branches: [main]',
      '    bazel_commands: bazel test //...',
    );
    assert.throws(
      () => parseWorkflowConfig(text, 'hearth.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.ok(e instanceof HearthError);
        assert.equal(e.code, 'invalid_config');
        assert.equal(e.message, 'hearth.yaml:6:21: actions[0].bazel_commands must be a list of strings');
        assert.deepEqual(e.diagnostics, [diag(6, 21, 'actions[0].bazel_commands must be a list of strings')]);
        return true;
      },
    );
  });

  it('reports every wrong type with its exact line:column', () => {
    const text = yaml(
      'actions:',
      '  - name: Test',
      '    triggers: {push: {branches: [main]}}',
      '    steps: "bazel test //..."',
      '    timeout: [1]',
      '    git_fetch_depth: abc',
      '    allow_concurrent_runs: "true"',
      '    env: [A]',
      '  - name: [x]',
      '    triggers:',
      '      push:',
      '        branches: main',
      '        tags: [{a: b}]',
      '      pull_request: [main]',
      '    steps:',
      '      - bazel test //...',
      '      - run: {x: 1}',
      '    resource_requests: 8GB',
    );
    assert.deepEqual(errorsOf(text), [
      diag(4, 12, 'actions[0].steps must be a list of steps like "- run: bazel test //..."'),
      diag(5, 14, 'actions[0].timeout must be a duration like "30m"'),
      diag(6, 22, 'actions[0].git_fetch_depth must be an integer'),
      diag(7, 28, 'actions[0].allow_concurrent_runs must be true or false'),
      diag(8, 10, 'actions[0].env must be a map of strings'),
      diag(9, 11, 'actions[1].name must be a string'),
      diag(12, 19, 'actions[1].triggers.push.branches must be a list of strings'),
      diag(13, 16, 'actions[1].triggers.push.tags[0] must be a string'),
      diag(14, 21, 'actions[1].triggers.pull_request must be a map'),
      diag(16, 9, 'actions[1].steps[0] must be a map like "run: bazel test //..."'),
      diag(17, 14, 'actions[1].steps[1].run must be a string'),
      diag(18, 24, 'actions[1].resource_requests must be a map'),
    ]);
  });

  it('reports invalid values', () => {
    const text = yaml(
      'actions:',
      '  - name: A',
      '    triggers:',
      '      pull_request:',
      '        branches: ["*"]',
      '        types: [opened, synchronise]',
      '        merge_with_base_interval: 4h',
      '      schedule: {crons: ["@daily"]}',
      '    steps: [{run: make}]',
      '    timeout: ten minutes',
      '    git_fetch_depth: -1',
      '    bazel_workspace_dir: ../outside',
      '    env: {"MY-VAR": x}',
      '    resource_requests: {memory: lots, cpu: 0, disk: 1.5 TB}',
    );
    assert.deepEqual(errorsOf(text), [
      diag(6, 25, 'actions[0].triggers.pull_request.types[1] "synchronise" is not a pull_request type; use one of opened, synchronize, reopened, edited, ready_for_review, auto_merge_enabled, approved'),
      diag(7, 35, 'actions[0].triggers.pull_request.merge_with_base_interval must be at most 3h, got "4h"'),
      diag(8, 26, 'actions[0].triggers.schedule.crons[0] must be a 5-field cron expression like "0 3 * * *", got "@daily"'),
      diag(10, 14, 'actions[0].timeout must be a duration like "30m", "1h30m" or "90s", got "ten minutes"'),
      diag(11, 22, 'actions[0].git_fetch_depth must be at least 0'),
      diag(12, 26, 'actions[0].bazel_workspace_dir must be a relative path inside the repository, got "../outside"'),
      diag(13, 11, 'actions[0].env.MY-VAR: "MY-VAR" is not a valid environment variable name'),
      diag(14, 33, 'actions[0].resource_requests.memory must be a number of bytes or a size like "8GB", "512MB" or "1.5GiB", got "lots"'),
      diag(14, 44, 'actions[0].resource_requests.cpu must be greater than 0, got "0"'),
    ]);
  });

  it('rejects a timeout without a unit or of zero', () => {
    const text = yaml(
      'actions:',
      '  - name: A',
      '    steps: [{run: make}]',
      '    timeout: 600',
      '  - name: B',
      '    steps: [{run: make}]',
      '    timeout: 0s',
    );
    assert.deepEqual(errorsOf(text), [
      diag(4, 14, 'actions[0].timeout must be a duration with a unit, e.g. "600s", "600m" or "1h30m", got "600"'),
      diag(7, 14, 'actions[1].timeout must be greater than 0, got "0s"'),
    ]);
  });

  it('rejects duplicate action names at the second name', () => {
    const text = yaml(
      'actions:',
      '  - name: Test',
      '    steps: [{run: a}]',
      '  - name: Other',
      '    steps: [{run: b}]',
      '  - name: "Test"',
      '    steps: [{run: c}]',
    );
    assert.deepEqual(errorsOf(text), [
      diag(6, 11, 'actions[2].name "Test" is already used by actions[0]; action names must be unique'),
    ]);
  });

  it('requires a name and at least one step; rejects steps together with bazel_commands', () => {
    const text = yaml(
      'actions:',
      '  - triggers: {push: {branches: [main]}}',
      '    steps: [{run: make}]',
      '  - name: NoSteps',
      '  - name: Empty',
      '    steps: []',
      '  - name: Both',
      '    steps: [{run: make}]',
      '    bazel_commands: [test //...]',
      '  - name: ""',
      '    steps: [{run: ""}]',
    );
    assert.deepEqual(errorsOf(text), [
      diag(2, 5, 'actions[0].name is required'),
      diag(4, 5, 'actions[1] has no steps: add e.g. "steps: [{run: bazel test //...}]"'),
      diag(6, 12, 'actions[2] has no steps: add e.g. "steps: [{run: bazel test //...}]"'),
      diag(9, 21, 'actions[3] sets both steps and bazel_commands; use only steps'),
      diag(10, 11, 'actions[4].name is required'),
      diag(11, 19, 'actions[4].steps[0].run is required'),
    ]);
  });

  it('requires an actions list at the top level', () => {
    assert.deepEqual(errorsOf('version: 1\n'), [diag(1, 1, 'actions is required: a list of actions with name, triggers and steps')]);
    assert.deepEqual(errorsOf('actions:\n'), [diag(1, 1, 'actions is required: a list of actions with name, triggers and steps')]);
    assert.deepEqual(errorsOf('actions: {a: 1}\n'), [diag(1, 10, 'actions must be a list of actions')]);
    assert.deepEqual(errorsOf('- a\n'), [diag(1, 1, 'the top level must be a map with an "actions" list')]);
    assert.deepEqual(errorsOf(''), [diag(1, 1, 'the file is empty: it needs an "actions" list')]);
    assert.deepEqual(errorsOf('# only a comment\n'), [diag(1, 1, 'the file is empty: it needs an "actions" list')]);
  });

  it('reports YAML syntax errors with line:column and the file name', () => {
    assert.deepEqual(errorsOf(yaml('actions:', '  - name: A', '\tsteps: []'), 'buildbuddy.yaml'), [
      diag(3, 1, 'invalid YAML: Tabs are not allowed as indentation', 'buildbuddy.yaml'),
    ]);
    assert.deepEqual(errorsOf(yaml('actions:', '  - name: [a, b', '    steps: []')), [
      diag(3, 5, 'invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'),
    ]);
    // The yaml library reports an unterminated quote at the end of the text.
    assert.deepEqual(errorsOf(yaml('actions:', '  - name: "Test', '    steps: []')), [
      diag(4, 1, 'invalid YAML: Missing closing "quote'),
    ]);
    assert.deepEqual(errorsOf(yaml('actions:', '  - name: A', '    name: B')), [
      diag(3, 5, 'invalid YAML: Map keys must be unique'),
    ]);
    const message = (() => {
      try {
        parseWorkflowConfig('actions: [\n', 'hearth.yaml');
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    assert.match(message, /^hearth\.yaml:\d+:\d+: invalid YAML: /);
  });

  it('refuses alias bombs instead of expanding them', () => {
    // Every level merges the previous one 10 times: 10^7 maps if expanded.
    const lines = ['x-a0: &a0 {os: linux}'];
    for (let i = 1; i < 8; i++) {
      lines.push(`x-a${i}: &a${i} {<<: [${Array.from({ length: 10 }, () => `*a${i - 1}`).join(', ')}]}`);
    }
    lines.push('actions:', '  - name: A', '    steps: [{run: make}]', '    <<: *a7');
    assert.deepEqual(errorsOf(yaml(...lines)), [diag(1, 1, 'the file uses aliases too many times (more than 2000 expansions)')]);
  });

  it('does not let "__proto__" keys reach an object prototype', () => {
    const text = yaml('actions:', '  - name: A', '    steps: [{run: make}]', '    platform_properties: {__proto__: x}');
    const { config } = parseWorkflowConfig(text, 'hearth.yaml');
    const props = config.actions[0]!.platformProperties;
    assert.equal(Object.getPrototypeOf(props), Object.prototype);
    assert.deepEqual(Object.entries(props), [['__proto__', 'x']]);
  });
});

describe('defaultWorkflowConfig', () => {
  it('tests all targets on pushes to the default branch and on pull requests', () => {
    assert.deepEqual(defaultWorkflowConfig('main'), {
      actions: [
        {
          ...baseAction('Test all targets', ['bazel test //...']),
          triggers: {
            push: { branches: ['main'], tags: [] },
            pullRequest: { branches: ['*'], mergeWithBase: true, forceManualMergeWithBase: true },
          },
        },
      ],
    });
  });

  it('without a known default branch, fires only on pull requests', () => {
    const action = defaultWorkflowConfig('').actions[0]!;
    assert.deepEqual(action.triggers?.push, { branches: [], tags: [] });
    assert.equal(actionMatchesEvent(action, { kind: 'push', branch: 'main' }), false);
    assert.equal(actionMatchesEvent(action, { kind: 'pull_request', baseBranch: 'main', action: 'opened' }), true);
  });
});

describe('actionMatchesEvent', () => {
  const parse = (...lines: string[]) => parseWorkflowConfig(yaml(...lines), 'hearth.yaml').config.actions[0]!;

  it('matches pushes by branch and tag patterns', () => {
    const action = parse(
      'actions:',
      '  - name: A',
      '    triggers:',
      '      push:',
      '        branches: ["*", "!wip/*"]',
      '        tags: ["v*"]',
      '    steps: [{run: make}]',
    );
    assert.equal(actionMatchesEvent(action, { kind: 'push', branch: 'main' }), true);
    assert.equal(actionMatchesEvent(action, { kind: 'push', branch: 'feature/a/b' }), true);
    assert.equal(actionMatchesEvent(action, { kind: 'push', branch: 'wip/x' }), false);
    assert.equal(actionMatchesEvent(action, { kind: 'push', tag: 'v1.2.3' }), true);
    assert.equal(actionMatchesEvent(action, { kind: 'push', tag: 'nightly' }), false);
    // A tag push is judged by the tag patterns only, even if a branch is also given.
    assert.equal(actionMatchesEvent(action, { kind: 'push', branch: 'main', tag: 'nightly' }), false);
    assert.equal(actionMatchesEvent(action, { kind: 'push' }), false);
    assert.equal(actionMatchesEvent(action, { kind: 'pull_request', baseBranch: 'main', action: 'opened' }), false);
  });

  it('does not match tags when only branches are configured', () => {
    const action = parse('actions:', '  - name: A', '    triggers: {push: {branches: ["*"]}}', '    steps: [{run: make}]');
    assert.equal(actionMatchesEvent(action, { kind: 'push', tag: 'v1' }), false);
    assert.equal(actionMatchesEvent(action, { kind: 'push', branch: 'v1' }), true);
  });

  it('matches pull requests by BASE branch with the default types', () => {
    const action = parse(
      'actions:',
      '  - name: A',
      '    triggers:',
      '      pull_request:',
      '        branches: [main, "release/*"]',
      '    steps: [{run: make}]',
    );
    const pr = (baseBranch: string, prAction: string) =>
      actionMatchesEvent(action, { kind: 'pull_request', baseBranch, action: prAction });
    assert.equal(pr('main', 'opened'), true);
    assert.equal(pr('release/1.0', 'synchronize'), true);
    assert.equal(pr('main', 'reopened'), true);
    assert.equal(pr('main', 'edited'), true);
    assert.equal(pr('main', ''), true); // a re-run carries no action
    assert.equal(pr('main', 'approved'), true);
    assert.equal(pr('main', 'ready_for_review'), false);
    assert.equal(pr('main', 'closed'), false);
    assert.equal(pr('dev', 'opened'), false);
    assert.equal(actionMatchesEvent(action, { kind: 'push', branch: 'main' }), false);
  });

  it('configured types replace the default list', () => {
    const action = parse(
      'actions:',
      '  - name: A',
      '    triggers:',
      '      pull_request:',
      '        branches: ["*"]',
      '        types: [ready_for_review, synchronize]',
      '    steps: [{run: make}]',
    );
    const pr = (prAction: string) => actionMatchesEvent(action, { kind: 'pull_request', baseBranch: 'main', action: prAction });
    assert.equal(pr('ready_for_review'), true);
    assert.equal(pr('synchronize'), true);
    assert.equal(pr('opened'), false);
    assert.equal(pr(''), false);
  });

  it('never fires without triggers, except on manual dispatch', () => {
    const action = parse('actions:', '  - name: A', '    steps: [{run: make}]');
    assert.equal(actionMatchesEvent(action, { kind: 'push', branch: 'main' }), false);
    assert.equal(actionMatchesEvent(action, { kind: 'pull_request', baseBranch: 'main', action: 'opened' }), false);
    assert.equal(actionMatchesEvent(action, { kind: 'manual' }), true);
  });
});
