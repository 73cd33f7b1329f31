import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { describeDatabase } from './records/database';
import { maskUrl } from './security/mask-url';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  // Lets the scheduler drain running jobs on SIGTERM / Ctrl-C before the process exits.
  app.enableShutdownHooks();
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port);
  console.log(`Sample app on http://localhost:${port}/jobs and http://localhost:${port}/executions`);
  console.log(`Execution records in the ${describeDatabase()}`);
  console.log(process.env.REDIS_URL ? `Coordinating on Redis ${maskUrl(process.env.REDIS_URL)}` : 'Coordinating in this process (embedded; no REDIS_URL)');
  if (!process.env.SAMPLE_API_TOKEN) {
    new Logger('Sample').warn(
      'The routes that trigger, pause, reschedule, create, stop and delete are open to anyone who reaches this port. ' +
        'Set SAMPLE_API_TOKEN to require "Authorization: Bearer <token>" on them; a real app puts its own authentication there.',
    );
  }
}

void bootstrap();
