// The gRPC server of the gRPC rows: weirtest.Echo/Unary answers with the request's bytes.
//   node grpc-server.mjs PORT
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const proto = fileURLToPath(new URL('../../test/fixtures/grpc/echo.proto', import.meta.url));
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(proto, { longs: String }));
const server = new grpc.Server();
server.addService(pkg.weirtest.Echo.service, {
  Unary: (call, cb) => cb(null, { data: call.request.data, count: 1 }),
});
server.bindAsync(`127.0.0.1:${process.argv[2]}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.log('listening');
});
