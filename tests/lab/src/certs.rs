//! The lab's certificate authority and SBC certificates, made with the
//! `openssl` command line (one of the lab's installed tools), so the files are
//! exactly what Kamailio, `openssl s_client` and baresip read. EC P-256 keys
//! keep generation to a few milliseconds.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{LabError, Result};
use crate::process::run_tool;

/// Paths of one certificate and its key.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run_tool(cmd, "openssl").map(|_| ())
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| LabError::Config(format!("non-UTF-8 path {}", p.display())))
}

/// Creates a self-signed CA in `dir` (`ca.pem`, `ca.key`).
pub(crate) fn make_ca(dir: &Path) -> Result<CertFiles> {
    let cert = dir.join("ca.pem");
    let key = dir.join("ca.key");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        path_str(&key)?,
        "-out",
        path_str(&cert)?,
        "-days",
        "3650",
        "-subj",
        "/CN=sipfleet lab CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ])?;
    Ok(CertFiles { cert, key })
}

/// Issues a server certificate for `host` (CN and DNS subjectAltName) and
/// `ip` (IP subjectAltName), signed by `ca`, as `<name>.pem`/`<name>.key`.
pub(crate) fn make_server_cert(
    dir: &Path,
    ca: &CertFiles,
    name: &str,
    host: &str,
    ip: Ipv4Addr,
) -> Result<CertFiles> {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!(
            "subjectAltName=DNS:{host},IP:{ip}\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n"
        ),
    )
    .map_err(|e| LabError::io(format!("write {}", ext.display()), e))?;
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        path_str(&key)?,
        "-out",
        path_str(&csr)?,
        "-subj",
        &format!("/CN={host}"),
    ])?;
    let serial = dir.join("ca.srl");
    openssl(&[
        "x509",
        "-req",
        "-in",
        path_str(&csr)?,
        "-CA",
        path_str(&ca.cert)?,
        "-CAkey",
        path_str(&ca.key)?,
        "-CAserial",
        path_str(&serial)?,
        "-CAcreateserial",
        "-out",
        path_str(&cert)?,
        "-days",
        "3650",
        "-extfile",
        path_str(&ext)?,
    ])?;
    Ok(CertFiles { cert, key })
}
