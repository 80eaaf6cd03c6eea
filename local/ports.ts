/**
 * Port helpers shared by the local emulators: listen with a clear error when the port is taken, and
 * find a free loopback port (for tests and for "port 0" style starts).
 */
import { createServer, type Server } from 'node:net';

/** Thrown when a local emulator cannot bind its port because something else already listens there. */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
  readonly code = 'EADDRINUSE';

  constructor(
    readonly port: number,
    readonly host: string,
    readonly what: string,
    readonly portHint?: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${what} cannot listen on ${host}:${port}: the port is already in use` +
        (portHint ? `. Choose another port with ${portHint}.` : '. Choose another port.'),
      options,
    );
  }
}

/**
 * Starts `server` listening on `host:port` and resolves with the bound port (useful with port 0).
 * `EADDRINUSE` becomes a {@link PortInUseError} naming the port and the flag/env var that changes it.
 */
export function listen(
  server: Pick<Server, 'listen' | 'once' | 'off' | 'address'>,
  port: number,
  host: string,
  what: string,
  portHint?: string,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE')
        reject(new PortInUseError(port, host, what, portHint, { cause: error }));
      else reject(error);
    };
    const onListening = (): void => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/** A port that was free on `host` a moment ago (the OS picks it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  const port = await listen(server, 0, host, 'free port probe');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
