export * from './refPattern.ts';
export * from './quantities.ts';
export * from './workflowConfig.ts';
