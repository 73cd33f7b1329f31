import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus } from '@nestjs/common';
import type { Response } from 'express';
import {
  CoordinatorUnavailableError,
  ExecutionNotFinalError,
  InvalidJobOptionError,
  JobLockedError,
  RecordNotFoundError,
  SchedulerError,
  StopTimeoutError,
  TooManyTriggersError,
  UnknownJobError,
} from 'nestjs-distributed-scheduler';

/**
 * Maps the library's errors to HTTP statuses; their messages already say what to do. A
 * RangeError is an argument out of its documented range (`preview` beyond 1,000 times).
 */
@Catch(SchedulerError, RangeError)
export class SchedulerErrorFilter implements ExceptionFilter {
  catch(error: SchedulerError | RangeError, host: ArgumentsHost) {
    const status = statusOf(error);
    host.switchToHttp().getResponse<Response>().status(status).json({ statusCode: status, error: error.name, message: error.message });
  }
}

function statusOf(error: SchedulerError | RangeError): HttpStatus {
  if (error instanceof RangeError) return HttpStatus.BAD_REQUEST;
  if (error instanceof TooManyTriggersError) return HttpStatus.TOO_MANY_REQUESTS;
  if (error instanceof UnknownJobError || error instanceof RecordNotFoundError) return HttpStatus.NOT_FOUND;
  if (error instanceof InvalidJobOptionError) return HttpStatus.BAD_REQUEST;
  if (error instanceof JobLockedError || error instanceof ExecutionNotFinalError) return HttpStatus.CONFLICT;
  if (error instanceof StopTimeoutError) return HttpStatus.GATEWAY_TIMEOUT;
  if (error instanceof CoordinatorUnavailableError) return HttpStatus.SERVICE_UNAVAILABLE;
  return HttpStatus.INTERNAL_SERVER_ERROR;
}
