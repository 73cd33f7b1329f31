import { INestApplicationContext, LoggerService, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { SchedulerModule, SchedulerModuleOptions } from '../../lib';

/** Collects what Nest's Logger prints, so tests can assert what was logged and how often. */
export class CapturingLogger implements LoggerService {
  readonly lines: { level: string; message: string; context?: string }[] = [];

  log(message: unknown, context?: string) {
    this.lines.push({ level: 'log', message: String(message), context });
  }
  error(message: unknown, _stack?: string, context?: string) {
    this.lines.push({ level: 'error', message: String(message), context });
  }
  warn(message: unknown, context?: string) {
    this.lines.push({ level: 'warn', message: String(message), context });
  }
  debug() {}
  verbose() {}

  count(level: string, pattern: RegExp): number {
    return this.lines.filter((line) => line.level === level && pattern.test(line.message)).length;
  }
}

/** Boots an application context with the scheduler and the given providers, as an app would. */
export async function bootApp(
  options: SchedulerModuleOptions,
  providers: Type[],
  logger: LoggerService = new CapturingLogger(),
): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({ imports: [SchedulerModule.forRoot(options)], providers })
    .setLogger(logger)
    .compile();
  moduleRef.useLogger(logger);
  await moduleRef.init();
  return moduleRef;
}
