import { Body, Controller, Get, HttpCode, Param, ParseIntPipe, Post, Put, Query, DefaultValuePipe } from '@nestjs/common';
import { JobScheduler, ScheduleUpdate } from 'nestjs-distributed-scheduler';

@Controller('jobs')
export class JobsController {
  constructor(private readonly scheduler: JobScheduler) {}

  @Get()
  list() {
    return this.scheduler.list();
  }

  @Get(':name')
  describe(@Param('name') name: string) {
    return this.scheduler.describe(name);
  }

  @Get(':name/preview')
  preview(@Param('name') name: string, @Query('count', new DefaultValuePipe(5), ParseIntPipe) count: number) {
    return this.scheduler.preview(name, count);
  }

  @Post(':name/trigger')
  @HttpCode(202)
  trigger(@Param('name') name: string) {
    return this.scheduler.trigger(name);
  }

  @Post(':name/pause')
  @HttpCode(204)
  pause(@Param('name') name: string) {
    return this.scheduler.pause(name);
  }

  @Post(':name/resume')
  @HttpCode(204)
  resume(@Param('name') name: string) {
    return this.scheduler.resume(name);
  }

  /** Body: `{ "every": "30s" }` or `{ "cron": "0 * * * *", "timeZone": "Europe/Paris" }`. */
  @Put(':name/schedule')
  @HttpCode(204)
  reschedule(@Param('name') name: string, @Body() update: ScheduleUpdate) {
    return this.scheduler.updateSchedule(name, update);
  }
}
