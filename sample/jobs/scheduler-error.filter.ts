import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  CoordinatorUnavailableError,
  ExecutionNotFinalError,
  InvalidJobOptionError,
  InvalidQueryError,
  JobLockedError,
  RecordNotFoundError,
  SchedulerError,
  StopTimeoutError,
  TooManyTriggersError,
  UnknownJobError,
} from 'nestjs-distributed-scheduler';

/**
 * Maps the library's errors to HTTP statuses. Errors about the request itself (an unknown job or
 * record, a bad option or query, a record still running) are sent with their message, which says
 * what to do. The others can carry internals (hosts, ports, instance ids, driver messages): the
 * client gets a plain sentence and the detail goes to the log. A RangeError is an argument out of
 * its documented range (`preview` beyond 1,000 times).
 */
@Catch(SchedulerError, RangeError)
export class SchedulerErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('SchedulerErrorFilter');

  catch(error: SchedulerError | RangeError, host: ArgumentsHost) {
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const { status, message } = answerTo(error);
    if (message !== error.message) this.logger.error(`${request.method} ${request.path} answered ${status}: ${error.message}`, error.stack);
    http.getResponse<Response>().status(status).json({ statusCode: status, error: error.name, message });
  }
}

function answerTo(error: SchedulerError | RangeError): { status: HttpStatus; message: string } {
  if (error instanceof RangeError) return { status: HttpStatus.BAD_REQUEST, message: error.message };
  if (error instanceof TooManyTriggersError) return { status: HttpStatus.TOO_MANY_REQUESTS, message: error.message };
  if (error instanceof UnknownJobError || error instanceof RecordNotFoundError) return { status: HttpStatus.NOT_FOUND, message: error.message };
  if (error instanceof InvalidJobOptionError || error instanceof InvalidQueryError) return { status: HttpStatus.BAD_REQUEST, message: error.message };
  if (error instanceof ExecutionNotFinalError) return { status: HttpStatus.CONFLICT, message: error.message };
  // Names the instance holding the lock, which is a host name.
  if (error instanceof JobLockedError) return { status: HttpStatus.CONFLICT, message: `Job "${error.job}" is running or locked; try again once it has ended or been unlocked.` };
  if (error instanceof StopTimeoutError) return { status: HttpStatus.GATEWAY_TIMEOUT, message: error.message };
  // Says where Redis is and what the driver answered.
  if (error instanceof CoordinatorUnavailableError) return { status: HttpStatus.SERVICE_UNAVAILABLE, message: 'The job scheduler cannot be reached right now; try again shortly.' };
  return { status: HttpStatus.INTERNAL_SERVER_ERROR, message: 'Internal server error' };
}
