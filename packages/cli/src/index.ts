export { findBazel } from './bazelPath.ts';
