/** Every fuzzer, in the order the runner runs them. */
import type { FuzzTarget } from '../target.ts';
import { http1 } from './http1.ts';

export const TARGETS: ReadonlyArray<FuzzTarget<unknown>> = [http1 as FuzzTarget<unknown>];
