import { INestApplicationContext, LoggerService, Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { SchedulerModule, SchedulerModuleOptions } from '../../lib';
import { EventLog } from './wait';

interface LogLine {
  level: string;
  message: string;
  context?: string;
}

/** Collects what Nest's Logger prints, so tests can assert what was logged and how often. */
export class CapturingLogger implements LoggerService {
  private readonly log$ = new EventLog<LogLine>();

  get lines(): LogLine[] {
    return this.log$.events;
  }

  log(message: unknown, context?: string) {
    this.log$.push({ level: 'log', message: String(message), context });
  }
  error(message: unknown, _stack?: string, context?: string) {
    this.log$.push({ level: 'error', message: String(message), context });
  }
  warn(message: unknown, context?: string) {
    this.log$.push({ level: 'warn', message: String(message), context });
  }
  debug() {}
  verbose() {}

  count(level: string, pattern: RegExp): number {
    return this.lines.filter((line) => line.level === level && pattern.test(line.message)).length;
  }

  /** Resolves when a line of this level matching the pattern has been logged. */
  until(level: string, pattern: RegExp): Promise<LogLine> {
    return this.log$.until(`a ${level} line matching ${pattern}`, (lines) => lines.find((line) => line.level === level && pattern.test(line.message)));
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
