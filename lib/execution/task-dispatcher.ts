import { Injectable } from '@nestjs/common';
import { Coordinator } from '../coordination/coordinator.interface';
import { UnknownJobError } from '../errors';
import { TickBatcher } from '../scheduling/tick-batcher';

/** A task to hand to a replica that runs it. */
export interface TaskDispatch {
  taskId: number;
  jobName: string;
}

/** Where `TaskManager.create` sends its tasks once they are committed. */
export abstract class TaskDispatcher {
  abstract dispatch(task: TaskDispatch): Promise<void>;
}

/**
 * Puts each task where every eligible replica can take it: a pending trigger of its job in the
 * coordinator (see ARCHITECTURE, "Task dispatch"). The worker replicas the job's `hosts` allows
 * claim it, one of them wins, and runs it under its own lease, within its `worker.concurrency`
 * and the job's `concurrency`. The tasks created in one event-loop turn go in one round trip.
 */
@Injectable()
export class ClusterTaskDispatcher extends TaskDispatcher {
  private readonly batches: TickBatcher<TaskDispatch, boolean>;

  constructor(coordinator: Coordinator) {
    super();
    this.batches = new TickBatcher((tasks) => coordinator.dispatchTasks(tasks.map(({ jobName, taskId }) => ({ name: jobName, taskId }))));
  }

  async dispatch(task: TaskDispatch): Promise<void> {
    // Unknown to the coordinator: no replica has registered the job yet (or Redis lost it).
    if (!(await this.batches.add(task))) throw new UnknownJobError(task.jobName);
  }
}
