export * from './errors.js';
export * from './duration.js';
export * from './workorder.js';
export * from './register.js';
export * from './grant.js';
export * from './policy.js';
export * from './evaluate.js';
export * from './plan.js';
