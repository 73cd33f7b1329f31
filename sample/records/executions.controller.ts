import { BadRequestException, Controller, Delete, Get, Header, HttpCode, Param, ParseIntPipe, Post, Query } from '@nestjs/common';
import {
  EXECUTION_STATUS,
  EXECUTION_TRIGGERS,
  ExecutionManager,
  ExecutionQuery,
  ExecutionStatus,
  ExecutionTrigger,
  TaskManager,
} from 'nestjs-distributed-scheduler/records';

const STATUSES = Object.values(EXECUTION_STATUS) as string[];
const TRIGGERS = Object.values(EXECUTION_TRIGGERS) as string[];
const SORTABLE = ['id', 'startTime', 'endTime', 'updateTime', 'status'];

/**
 * Execution records over HTTP. `RecordNotFoundError` becomes 404 and `ExecutionNotFinalError`
 * 409 in `SchedulerErrorFilter`.
 */
@Controller()
export class ExecutionsController {
  constructor(
    private readonly executions: ExecutionManager,
    private readonly tasks: TaskManager,
  ) {}

  /**
   * `GET /executions?vendorType=heartbeat&status=Success,Error&trigger=SCHEDULE&page=1&pageSize=20&sort=startTime:ASC&attr.requestedBy=alice`
   * (every parameter optional; `status` and `trigger` take a comma-separated list).
   */
  @Get('executions')
  async list(@Query() params: Record<string, string | string[]>) {
    const query = toExecutionQuery(params);
    const [items, total] = await Promise.all([this.executions.list(query), this.executions.count(query)]);
    return { total, page: query.page ?? 1, pageSize: query.pageSize ?? 20, items };
  }

  /** For health checks: is the database reachable, how many record writes wait for it. */
  @Get('executions/recording-status')
  recordingStatus() {
    return this.executions.recordingStatus();
  }

  /** The execution with its tasks. */
  @Get('executions/:id')
  async get(@Param('id', ParseIntPipe) id: number) {
    const execution = await this.executions.get(id);
    const tasks = await this.tasks.list({ executionId: id, sort: { field: 'id', order: 'ASC' }, pageSize: 1000 });
    return { ...execution, tasks };
  }

  /** Stops every task of the execution that has not ended; running ones abort through `ctx.signal`. */
  @Post('executions/:id/stop')
  @HttpCode(202)
  async stop(@Param('id', ParseIntPipe) id: number) {
    await this.executions.stop(id);
    return this.executions.get(id);
  }

  /** Deletes a final execution with its tasks and logs; 409 while it is still running. */
  @Delete('executions/:id')
  @HttpCode(204)
  delete(@Param('id', ParseIntPipe) id: number) {
    return this.executions.delete(id);
  }

  @Get('tasks/:id')
  task(@Param('id', ParseIntPipe) id: number) {
    return this.tasks.get(id);
  }

  /** The lines the task's handler wrote through `ctx.logger`. */
  @Get('tasks/:id/log')
  @Header('content-type', 'text/plain; charset=utf-8')
  log(@Param('id', ParseIntPipe) id: number) {
    return this.tasks.getLog(id);
  }
}

function toExecutionQuery(params: Record<string, string | string[]>): ExecutionQuery {
  const one = (name: string): string | undefined => {
    const value = params[name];
    return Array.isArray(value) ? value[value.length - 1] : value;
  };
  const list = (name: string, allowed: string[]): string[] | undefined => {
    const value = params[name];
    if (value === undefined) return undefined;
    const values = (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).filter(Boolean);
    const wrong = values.find((v) => !allowed.includes(v));
    if (wrong !== undefined) throw new BadRequestException(`${name} must be one of ${allowed.join(', ')}; got "${wrong}"`);
    return values;
  };
  const int = (name: string): number | undefined => {
    const value = one(name);
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new BadRequestException(`${name} must be a whole number ≥ 1; got "${value}"`);
    return Number(value);
  };

  const query: ExecutionQuery = {
    vendorType: one('vendorType'),
    vendorId: one('vendorId'),
    jobName: one('jobName'),
    status: list('status', STATUSES) as ExecutionStatus[] | undefined,
    trigger: list('trigger', TRIGGERS) as ExecutionTrigger[] | undefined,
    page: int('page'),
    pageSize: int('pageSize'),
  };
  const sort = one('sort');
  if (sort) {
    const [field, order = 'DESC'] = sort.split(':');
    if (!SORTABLE.includes(field) || !['ASC', 'DESC'].includes(order.toUpperCase())) {
      throw new BadRequestException(`sort must be <field>[:ASC|DESC] with a field among ${SORTABLE.join(', ')}; got "${sort}"`);
    }
    query.sort = { field: field as NonNullable<ExecutionQuery['sort']>['field'], order: order.toUpperCase() as 'ASC' | 'DESC' };
  }
  // attr.<key>=<value>: matched against the execution's extraAttrs by the database's JSON functions.
  const extraAttrs = Object.fromEntries(
    Object.keys(params)
      .filter((key) => key.startsWith('attr.') && key.length > 'attr.'.length)
      .map((key) => [key.slice('attr.'.length), one(key)!]),
  );
  if (Object.keys(extraAttrs).length > 0) query.extraAttrs = extraAttrs;
  // Unset filters stay out of the query (undefined would otherwise mean "no filter" anyway).
  return Object.fromEntries(Object.entries(query).filter(([, value]) => value !== undefined)) as ExecutionQuery;
}
