export { startServer, localPlatform, type ServerConfig, type RunningServer } from './server.ts';
