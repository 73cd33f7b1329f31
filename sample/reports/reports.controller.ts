import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ExecutionManager, TaskManager } from 'nestjs-distributed-scheduler/records';
import { REPORT } from './report.jobs';

interface ReportRequest {
  requestedBy?: string;
  regions?: string[];
}

@Controller('reports')
export class ReportsController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly executions: ExecutionManager,
    private readonly tasks: TaskManager,
  ) {}

  /**
   * One report execution with a `reports.build` task per region. Created in one transaction of
   * the app's (where it would also write its own rows): the tasks are dispatched only once it
   * commits, and never if it rolls back.
   *
   * Body (optional): `{ "requestedBy": "alice", "regions": ["eu", "us", "apac"] }`.
   */
  @Post()
  @HttpCode(202)
  async request(@Body() body: ReportRequest = {}) {
    const requestedBy = body.requestedBy ?? 'anonymous';
    const regions = body.regions?.length ? body.regions : ['eu', 'us', 'apac'];
    return this.dataSource.transaction(async (manager) => {
      const executionId = await this.executions.create(REPORT, null, 'MANUAL', { requestedBy }, manager);
      // One task per region, in one statement, dispatched once the transaction commits.
      const taskIds = await this.tasks.createMany(executionId, regions.map((region) => ({ name: 'reports.build', parameters: { region }, extraAttrs: { region } })), manager);
      return { executionId, taskIds };
    });
  }
}
