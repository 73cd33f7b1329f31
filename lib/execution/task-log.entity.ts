/** The log of one task: the lines its handler wrote through `ctx.logger`, bounded in size. */
export class TaskLog {
  taskId!: number;
  content!: string;
  /** Oldest lines dropped to keep the log within its bound. */
  droppedLines!: number;
  updateTime!: Date;
}
