import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { ExecutionQuery, TaskQuery, TimeRange } from './record-query.interface';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './record-query.validation';
import type { RecordsDialect } from './records.dialect';

// The query must have passed `checkExecutionQuery` / `checkTaskQuery` first: the sort field is
// written into the statement, and the other values are bound as they are.
const EQUALS = ['vendorType', 'vendorId', 'jobName', 'jobId', 'executionId'] as const;
const ANY_OF = ['status', 'trigger'] as const;
const RANGES = ['startTime', 'endTime'] as const;

/** Applies a query's filters (not paging) to a query builder whose alias is `r`. */
export function applyFilters<T extends ObjectLiteral>(
  builder: SelectQueryBuilder<T>,
  query: ExecutionQuery | TaskQuery,
  dialect: RecordsDialect,
): SelectQueryBuilder<T> {
  const q = query as Record<string, unknown>;
  for (const field of EQUALS) {
    if (q[field] !== undefined) builder.andWhere(`r.${field} = :${field}`, { [field]: field === 'vendorId' ? String(q[field]) : q[field] });
  }
  for (const field of ANY_OF) {
    const value = q[field];
    if (value === undefined) continue;
    const values = Array.isArray(value) ? value : [value];
    builder.andWhere(values.length === 0 ? '1 = 0' : `r.${field} IN (:...${field})`, { [field]: values });
  }
  for (const field of RANGES) {
    const range = q[field] as TimeRange | undefined;
    if (range?.from) builder.andWhere(`r.${field} >= :${field}From`, { [`${field}From`]: range.from });
    if (range?.to) builder.andWhere(`r.${field} <= :${field}To`, { [`${field}To`]: range.to });
  }
  const column = builder.expressionMap.mainAlias!.metadata.findColumnWithPropertyName('extraAttrs')!.databaseName;
  Object.entries(query.extraAttrs ?? {}).forEach(([key, value], index) => {
    const parameter = `attr${index}`;
    // A key with dots is also a path into nested objects ('artifact.digest'), as Harbor reads it;
    // the top-level key holding those dots, which earlier versions matched, still matches too.
    const members = key.split('.');
    const paths = members.length > 1 && !members.includes('') ? [[key], members] : [[key]];
    const parameters: Record<string, unknown> = { [parameter]: dialect.jsonScalar(value) };
    const matches = paths.map((path, n) => {
      parameters[`${parameter}_key${n}`] = dialect.jsonPath(path);
      return `${dialect.jsonText(`r.${column}`, `${parameter}_key${n}`, path.length)} = :${parameter}`;
    });
    builder.andWhere(matches.length === 1 ? matches[0] : `(${matches.join(' OR ')})`, parameters);
  });
  return builder;
}

/** Applies sorting and paging. */
export function applyPage<T extends ObjectLiteral>(builder: SelectQueryBuilder<T>, query: ExecutionQuery | TaskQuery): SelectQueryBuilder<T> {
  const pageSize = Math.min(Math.max(1, Math.floor(query.pageSize ?? DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE);
  const page = Math.max(1, Math.floor(query.page ?? 1));
  const { field, order = 'DESC' } = query.sort ?? { field: 'id' };
  builder.orderBy(`r.${field}`, order === 'ASC' ? 'ASC' : 'DESC');
  if (field !== 'id') builder.addOrderBy('r.id', order === 'ASC' ? 'ASC' : 'DESC');
  return builder.skip((page - 1) * pageSize).take(pageSize);
}
