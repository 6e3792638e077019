/** Every fuzzer, in the order the runner runs them. */
import type { FuzzTarget } from '../target.ts';
import { http1 } from './http1.ts';
import { http2 } from './http2.ts';
import { kdl } from './kdl.ts';
import { abiCodec } from './abi-codec.ts';
import { pluginOutput } from './plugin-output.ts';
import { pluginBinary } from './plugin-binary.ts';

export const TARGETS: ReadonlyArray<FuzzTarget<unknown>> = [http1 as FuzzTarget<unknown>, http2 as FuzzTarget<unknown>, kdl as FuzzTarget<unknown>, abiCodec as FuzzTarget<unknown>, pluginOutput as FuzzTarget<unknown>, pluginBinary as FuzzTarget<unknown>];
