import { Injectable, OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { VENDOR_HOOK_METADATA, VendorHookMetadata } from './vendor-hooks.decorators';
import { VendorHookRegistry } from './vendor-hooks.registry';

/** Registers the methods marked `@OnTaskStatusChange`, `@OnExecutionStatusChange` and `@OnCheckIn`. */
@Injectable()
export class VendorHooksExplorer implements OnModuleInit {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly hooks: VendorHookRegistry,
  ) {}

  onModuleInit(): void {
    for (const { instance } of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const prototype = instance && Object.getPrototypeOf(instance);
      if (!prototype) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const meta = this.reflector.get<VendorHookMetadata | undefined>(VENDOR_HOOK_METADATA, prototype[methodName]);
        if (!meta) continue;
        const method = (...args: unknown[]) => prototype[methodName].apply(instance, args);
        if (meta.kind === 'task') this.hooks.onTaskStatusChange(meta.vendorType, method);
        else if (meta.kind === 'execution') this.hooks.onExecutionStatusChange(meta.vendorType, method);
        else this.hooks.onCheckIn(meta.vendorType, method);
      }
    }
  }
}
