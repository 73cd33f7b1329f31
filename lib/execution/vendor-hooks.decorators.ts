import { SetMetadata } from '@nestjs/common';

export const VENDOR_HOOK_METADATA = 'nestjs-distributed-scheduler:vendor-hook';

export interface VendorHookMetadata {
  kind: 'task' | 'execution' | 'check-in';
  vendorType: string;
}

/** The method is called with `(task, previousStatus)` after a task of `vendorType` changed status. */
export const OnTaskStatusChange = (vendorType: string): MethodDecorator =>
  SetMetadata<string, VendorHookMetadata>(VENDOR_HOOK_METADATA, { kind: 'task', vendorType });

/** The method is called with `(execution, previousStatus)` after an execution of `vendorType` changed status. */
export const OnExecutionStatusChange = (vendorType: string): MethodDecorator =>
  SetMetadata<string, VendorHookMetadata>(VENDOR_HOOK_METADATA, { kind: 'execution', vendorType });

/** The method receives `(task, data)` for every `ctx.checkIn(data)` of a running task of `vendorType`. */
export const OnCheckIn = (vendorType: string): MethodDecorator =>
  SetMetadata<string, VendorHookMetadata>(VENDOR_HOOK_METADATA, { kind: 'check-in', vendorType });
