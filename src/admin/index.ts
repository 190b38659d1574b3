export * from './target.js';
export * from './server.js';
export { STAT_FIELDS, type StatField, type NumericStats } from './stats-fields.js';
