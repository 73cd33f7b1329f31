import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { describeDatabase } from './records/database';

async function bootstrap() {
  const app = await NestFactory.create(AppModule);
  // Lets the scheduler drain running jobs on SIGTERM / Ctrl-C before the process exits.
  app.enableShutdownHooks();
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port);
  console.log(`Sample app on http://localhost:${port}/jobs and http://localhost:${port}/executions`);
  console.log(`Execution records in the ${describeDatabase()}`);
}

void bootstrap();
