// The buffer-size options every type the FFI engine serves takes, by one pair
// of names: `receiveBufferSize` (SO_RCVBUF) and `sendBufferSize` (SO_SNDBUF).

import { checkOptionalInteger } from "./checks.ts";
import type { FdSocket } from "../ffi/socket.ts";

/** The largest size setsockopt takes: an int. */
const MAX_BUFFER_SIZE = 0x7fffffff;

/** Buffer sizes asked for, checked. */
export interface BufferSizes {
  receive?: number;
  send?: number;
}

/**
 * Checks `receiveBufferSize` and `sendBufferSize` (1 to 2^31-1 bytes each)
 * before any system call.
 *
 * @param call The call, for the message (`listenDatagram`).
 * @param options The options that may hold them.
 * @returns The sizes given.
 * @throws {TypeError} For a size that is not an integer.
 * @throws {RangeError} For a size out of range.
 */
export function checkBufferSizes(
  call: string,
  options: { receiveBufferSize?: unknown; sendBufferSize?: unknown },
): BufferSizes {
  return {
    receive: checkOptionalInteger(
      `${call}: receiveBufferSize`,
      options.receiveBufferSize,
      1,
      MAX_BUFFER_SIZE,
    ),
    send: checkOptionalInteger(
      `${call}: sendBufferSize`,
      options.sendBufferSize,
      1,
      MAX_BUFFER_SIZE,
    ),
  };
}

/** Sets the sizes given; as root past the sysctl limits (SO_RCVBUFFORCE, SO_SNDBUFFORCE). */
export function applyBufferSizes(socket: FdSocket<unknown>, sizes: BufferSizes): void {
  if (sizes.receive !== undefined) socket.setBufferSize("receive", sizes.receive);
  if (sizes.send !== undefined) socket.setBufferSize("send", sizes.send);
}
