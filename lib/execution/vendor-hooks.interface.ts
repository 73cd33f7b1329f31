import type { ExecutionStatus, TaskStatus } from './execution.constants';
import type { Execution } from './execution.entity';
import type { Task } from './task.entity';

/** Called after a task of the vendor type changed status (the change is committed already). */
export type TaskStatusChangeHook = (task: Task, previousStatus: TaskStatus) => unknown;
/** Called after an execution of the vendor type changed status. */
export type ExecutionStatusChangeHook = (execution: Execution, previousStatus: ExecutionStatus) => unknown;
/** Receives what a running handler of the vendor type sends with `ctx.checkIn(data)`. */
export type CheckInProcessor = (task: Task, data: unknown) => unknown;

export type VendorHookKind = 'task status change hook' | 'execution status change hook' | 'check-in processor';
