import { Injectable } from '@nestjs/common';
import { DuplicateVendorHookError } from '../errors';
import type { CheckInProcessor, ExecutionStatusChangeHook, TaskStatusChangeHook, VendorHookKind } from './vendor-hooks.interface';

/**
 * Post functions and check-in processors, at most one of each kind per vendor type. Filled at
 * bootstrap from `@OnTaskStatusChange`, `@OnExecutionStatusChange` and `@OnCheckIn`, or
 * programmatically through these methods.
 */
@Injectable()
export class VendorHookRegistry {
  private readonly taskHooks = new Map<string, TaskStatusChangeHook>();
  private readonly executionHooks = new Map<string, ExecutionStatusChangeHook>();
  private readonly checkIns = new Map<string, CheckInProcessor>();

  onTaskStatusChange(vendorType: string, hook: TaskStatusChangeHook): void {
    add(this.taskHooks, 'task status change hook', vendorType, hook);
  }

  onExecutionStatusChange(vendorType: string, hook: ExecutionStatusChangeHook): void {
    add(this.executionHooks, 'execution status change hook', vendorType, hook);
  }

  onCheckIn(vendorType: string, processor: CheckInProcessor): void {
    add(this.checkIns, 'check-in processor', vendorType, processor);
  }

  taskHook(vendorType: string): TaskStatusChangeHook | undefined {
    return this.taskHooks.get(vendorType);
  }

  executionHook(vendorType: string): ExecutionStatusChangeHook | undefined {
    return this.executionHooks.get(vendorType);
  }

  checkInProcessor(vendorType: string): CheckInProcessor | undefined {
    return this.checkIns.get(vendorType);
  }
}

function add<T>(hooks: Map<string, T>, kind: VendorHookKind, vendorType: string, hook: T): void {
  if (typeof vendorType !== 'string' || vendorType === '') throw new TypeError(`A ${kind} needs a non-empty vendor type, got ${JSON.stringify(vendorType)}.`);
  if (hooks.has(vendorType)) throw new DuplicateVendorHookError(kind, vendorType);
  hooks.set(vendorType, hook);
}
