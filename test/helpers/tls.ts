/**
 * Certificates for tests, made at run time with the openssl CLI: one CA, then server and
 * client certificates it signs (EC P-256 keys: fast to generate).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  /** PEM of the CA certificate (for `ca` options). */
  readonly caPem: Buffer;
  /** A server certificate for `names` (DNS names, or IP addresses such as 127.0.0.1). */
  server(file: string, names: readonly string[], cn?: string): CertFiles;
  /** A client certificate with subject CN=`cn`, O=`org`. */
  client(file: string, cn: string, org?: string): CertFiles;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
}

let serial = 0;

/** A fresh CA in its own temp directory. `name` ends up in the CA's CN. */
export function createPki(name = 'Weir Test CA'): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'weir-pki-'));
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.crt');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const issue = (file: string, subj: string, ext: string): CertFiles => {
    const key = join(dir, `${file}.key`);
    const csr = join(dir, `${file}.csr`);
    const cert = join(dir, `${file}.crt`);
    const extFile = join(dir, `${file}.ext`);
    writeFileSync(extFile, ext);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', subj], dir);
    // Distinct serials: a reissued certificate must be told apart from the old one.
    serial++;
    openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', String(Date.now() * 100 + serial), '-days', '2', '-out', cert, '-extfile', extFile], dir);
    return { cert, key };
  };
  return {
    dir,
    caCert,
    caKey,
    caPem: readFileSync(caCert),
    server(file, names, cn = names[0]!) {
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      return issue(file, `/CN=${cn}`, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
    },
    client(file, cn, org = 'Weir Tests') {
      return issue(file, `/O=${org}/CN=${cn}`, `extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n`);
    },
  };
}
