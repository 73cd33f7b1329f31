export { ContinuousJobs } from './continuous-jobs.service';
export type { ContinuousJobOptions } from './continuous.options';
