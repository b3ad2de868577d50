export * from './schemas.ts';
export * from './client.ts';
export * from './workflowSchemas.ts';
