import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus } from '@nestjs/common';
import type { Response } from 'express';
import { CoordinatorUnavailableError, InvalidJobOptionError, JobLockedError, SchedulerError, UnknownJobError } from 'nestjs-distributed-scheduler';

/** Maps the library's errors to HTTP statuses; their messages already say what to do. */
@Catch(SchedulerError)
export class SchedulerErrorFilter implements ExceptionFilter {
  catch(error: SchedulerError, host: ArgumentsHost) {
    const status =
      error instanceof UnknownJobError
        ? HttpStatus.NOT_FOUND
        : error instanceof InvalidJobOptionError
          ? HttpStatus.BAD_REQUEST
          : error instanceof JobLockedError
            ? HttpStatus.CONFLICT
            : error instanceof CoordinatorUnavailableError
              ? HttpStatus.SERVICE_UNAVAILABLE
              : HttpStatus.INTERNAL_SERVER_ERROR;
    host.switchToHttp().getResponse<Response>().status(status).json({ statusCode: status, error: error.name, message: error.message });
  }
}
