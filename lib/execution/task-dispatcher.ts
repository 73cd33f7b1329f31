import { Injectable } from '@nestjs/common';
import { SchedulerOrchestrator } from '../scheduling/scheduler.orchestrator';

/** A task to hand to a replica that runs it. */
export interface TaskDispatch {
  taskId: number;
  jobName: string;
}

/**
 * Where `TaskManager.create` sends its tasks once they are committed. This replica runs them for
 * now; a cluster-wide dispatcher replaces this seam.
 */
export abstract class TaskDispatcher {
  abstract dispatch(task: TaskDispatch): Promise<void>;
}

@Injectable()
export class LocalTaskDispatcher extends TaskDispatcher {
  constructor(private readonly orchestrator: SchedulerOrchestrator) {
    super();
  }

  dispatch(task: TaskDispatch): Promise<void> {
    return this.orchestrator.runTask(task.jobName, task.taskId);
  }
}
