import { CanActivate, ExecutionContext, Injectable, Logger, UnauthorizedException } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

/** Methods that only read: open to anyone even with a token set. */
const READ_ONLY = ['GET', 'HEAD', 'OPTIONS'];

/**
 * The sample's guard on the routes that change something (trigger, pause, reschedule, create,
 * stop, delete). Off unless `SAMPLE_API_TOKEN` is set; then those routes need
 * `Authorization: Bearer <token>`. A production app puts its own authentication here (the
 * README's "In production" paragraph): without one, anyone who reaches the port runs your jobs.
 */
@Injectable()
export class ApiTokenGuard implements CanActivate {
  private readonly logger = new Logger('ApiTokenGuard');
  /** A digest of the token, so the comparison takes the same time whatever the length sent. */
  private readonly expected: Buffer | null;

  constructor() {
    const token = process.env.SAMPLE_API_TOKEN;
    this.expected = token ? digest(token) : null;
  }

  /** Whether mutating routes are open to anyone (no `SAMPLE_API_TOKEN`). */
  get open(): boolean {
    return this.expected === null;
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.expected === null) return true;
    const request = context.switchToHttp().getRequest<Request>();
    if (READ_ONLY.includes(request.method)) return true;
    const [scheme, token] = (request.headers.authorization ?? '').split(' ');
    if (scheme === 'Bearer' && token && timingSafeEqual(digest(token), this.expected)) return true;
    this.logger.warn(`Refused ${request.method} ${request.path} from ${request.ip}: ${request.headers.authorization ? 'wrong token' : 'no token'}`);
    throw new UnauthorizedException('This route needs the header Authorization: Bearer <SAMPLE_API_TOKEN>.');
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
