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
  UnknownJobError,
} from 'nestjs-distributed-scheduler';

/** Maps the library's errors to HTTP statuses; their messages already say what to do. */
@Catch(SchedulerError)
export class SchedulerErrorFilter implements ExceptionFilter {
  catch(error: SchedulerError, host: ArgumentsHost) {
    const status = statusOf(error);
    host.switchToHttp().getResponse<Response>().status(status).json({ statusCode: status, error: error.name, message: error.message });
  }
}

function statusOf(error: SchedulerError): HttpStatus {
  if (error instanceof UnknownJobError || error instanceof RecordNotFoundError) return HttpStatus.NOT_FOUND;
  if (error instanceof InvalidJobOptionError) return HttpStatus.BAD_REQUEST;
  if (error instanceof JobLockedError || error instanceof ExecutionNotFinalError) return HttpStatus.CONFLICT;
  if (error instanceof StopTimeoutError) return HttpStatus.GATEWAY_TIMEOUT;
  if (error instanceof CoordinatorUnavailableError) return HttpStatus.SERVICE_UNAVAILABLE;
  return HttpStatus.INTERNAL_SERVER_ERROR;
}
