import { Logger, LoggerService } from '@nestjs/common';
import type { TaskLogBuffer } from './task-log.buffer';

/** `ctx.logger` of a recorded run: the app's log as before, and the task's log. */
export class TaskLogger implements LoggerService {
  constructor(
    private readonly logger: Logger,
    private readonly buffer: TaskLogBuffer,
  ) {}

  log(message: unknown, ...rest: unknown[]): void {
    this.buffer.append('log', message);
    this.logger.log(message, ...rest);
  }

  error(message: unknown, ...rest: unknown[]): void {
    this.buffer.append('error', message);
    this.logger.error(message, ...rest);
  }

  warn(message: unknown, ...rest: unknown[]): void {
    this.buffer.append('warn', message);
    this.logger.warn(message, ...rest);
  }

  debug(message: unknown, ...rest: unknown[]): void {
    this.buffer.append('debug', message);
    this.logger.debug(message, ...rest);
  }

  verbose(message: unknown, ...rest: unknown[]): void {
    this.buffer.append('verbose', message);
    this.logger.verbose(message, ...rest);
  }

  fatal(message: unknown, ...rest: unknown[]): void {
    this.buffer.append('fatal', message);
    this.logger.fatal(message, ...rest);
  }
}
