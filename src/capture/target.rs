//! One interface to capture on, as the user names it: `NS:IF`, `host:IF`
//! or `IF`.

use super::*;

/// One interface to capture on, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// None: the namespace netplumb runs in.
    pub ns: Option<NsName>,
    pub ifname: IfName,
}

impl Target {
    /// "NS:IF", "host:IF" or "IF". Interface names cannot hold ':', so the
    /// last ':' splits.
    pub fn parse(arg: &str) -> Result<Self, CaptureError> {
        let bad = |why: String| CaptureError::BadTarget {
            arg: arg.to_string(),
            why,
        };
        let (ns, ifname) = match arg.rsplit_once(':') {
            Some(("host", i)) | Some(("", i)) => (None, i),
            Some((n, i)) => (Some(NsName::new(n).map_err(|e| bad(e.to_string()))?), i),
            None => (None, arg),
        };
        let ifname = IfName::new(ifname).map_err(|e| bad(e.to_string()))?;
        Ok(Self { ns, ifname })
    }

    /// The name written in pcapng's if_name and the lines: "a:eth0", "host:eth0".
    pub fn label(&self) -> String {
        match &self.ns {
            Some(n) => format!("{n}:{}", self.ifname),
            None => format!("host:{}", self.ifname),
        }
    }

    fn place(&self) -> String {
        match &self.ns {
            Some(n) => format!("netns {n}"),
            None => "the host namespace".into(),
        }
    }

    pub(super) fn open(&self) -> Result<PacketSocket, CaptureError> {
        let file = match &self.ns {
            None => None,
            Some(n) => {
                let dir = crate::apply::netns::NetnsDir::default();
                if !dir.exists(n) {
                    return Err(CaptureError::NoNetns(n.to_string()));
                }
                Some(
                    dir.open(n)
                        .map_err(|_| CaptureError::NoNetns(n.to_string()))?,
                )
            }
        };
        PacketSocket::open(file.as_ref(), self.ifname.as_str()).map_err(|err| match err {
            SockError::NoInterface(_) => CaptureError::NoInterface {
                ifname: self.ifname.to_string(),
                place: self.place(),
            },
            err => CaptureError::Socket {
                target: self.label(),
                err,
            },
        })
    }
}
