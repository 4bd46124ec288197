//! The system calls a sandboxed command may not make, as a classic BPF program for
//! bubblewrap's `--seccomp`: the kernel's keyrings (`nobody`'s user keyring is shared by every
//! sandbox and outlives each command), and new user namespaces (in which a command would hold
//! every capability over mounts of its own: the kernel's largest surface for an escape). Every
//! other call is allowed; a 32-bit or x32 call, which would name the same calls by other
//! numbers, is refused whole.

/// `struct seccomp_data`'s fields the filter reads.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// The low half of the first argument (little-endian).
const ARG0: u32 = 16;

const LD_W_ABS: u16 = 0x20;
const JEQ: u16 = 0x15;
const JGE: u16 = 0x35;
const JSET: u16 = 0x45;
const RET: u16 = 0x06;

const ALLOW: u32 = 0x7fff_0000;
const ERRNO: u32 = 0x0005_0000;
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const CLONE_NEWUSER: u32 = 0x1000_0000;
/// x32 calls carry this bit in their number.
const X32: u32 = 0x4000_0000;

#[cfg(target_arch = "x86_64")]
mod arch {
    pub const AUDIT_ARCH: u32 = 0xc000_003e;
    pub const ADD_KEY: u32 = 248;
    pub const REQUEST_KEY: u32 = 249;
    pub const KEYCTL: u32 = 250;
    pub const UNSHARE: u32 = 272;
    pub const CLONE: u32 = 56;
    pub const CLONE3: u32 = 435;
}

#[cfg(target_arch = "aarch64")]
mod arch {
    pub const AUDIT_ARCH: u32 = 0xc000_00b7;
    pub const ADD_KEY: u32 = 217;
    pub const REQUEST_KEY: u32 = 218;
    pub const KEYCTL: u32 = 219;
    pub const UNSHARE: u32 = 97;
    pub const CLONE: u32 = 220;
    pub const CLONE3: u32 = 435;
}

/// One instruction: `struct sock_filter`.
fn op(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0..2].copy_from_slice(&code.to_ne_bytes());
    b[2] = jt;
    b[3] = jf;
    b[4..8].copy_from_slice(&k.to_ne_bytes());
    b
}

/// The program's bytes, or `None` on an architecture it is not written for.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn program() -> Option<Vec<u8>> {
    use arch::*;
    // Jumps count the instructions they skip; the targets are the last three.
    let prog = [
        /* 0 */ op(LD_W_ABS, 0, 0, ARCH),
        /* 1 */ op(JEQ, 1, 0, AUDIT_ARCH),
        /* 2 */ op(RET, 0, 0, ERRNO | EPERM),
        /* 3 */ op(LD_W_ABS, 0, 0, NR),
        /* 4 */ op(JGE, 10, 0, X32),
        /* 5 */ op(JEQ, 9, 0, ADD_KEY),
        /* 6 */ op(JEQ, 8, 0, REQUEST_KEY),
        /* 7 */ op(JEQ, 7, 0, KEYCTL),
        /* 8 */ op(JEQ, 7, 0, CLONE3),
        /* 9 */ op(JEQ, 2, 0, UNSHARE),
        /* 10 */ op(JEQ, 1, 0, CLONE),
        /* 11 */ op(RET, 0, 0, ALLOW),
        /* 12 */ op(LD_W_ABS, 0, 0, ARG0),
        /* 13 */ op(JSET, 1, 0, CLONE_NEWUSER),
        /* 14 */ op(RET, 0, 0, ALLOW),
        /* 15 */ op(RET, 0, 0, ERRNO | EPERM),
        // clone3's flags are behind a pointer the filter cannot read: "not here" makes the
        // C library fall back to clone, whose flags it can.
        /* 16 */
        op(RET, 0, 0, ERRNO | ENOSYS),
    ];
    Some(prog.concat())
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn program() -> Option<Vec<u8>> {
    None
}

/// The program in a memory file, read from its start by bubblewrap (a fresh one each
/// command: bubblewrap reads it to its end).
pub fn memfd() -> std::io::Result<Option<std::os::fd::OwnedFd>> {
    use std::io::{Seek, Write};
    let Some(bytes) = program() else {
        return Ok(None);
    };
    let fd =
        nix::sys::memfd::memfd_create(c"operator-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(std::io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(&bytes)?;
    f.rewind()?;
    Ok(Some(f.into()))
}

#[cfg(test)]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod tests {
    use super::arch::*;
    use super::*;

    /// Runs the program as the kernel would on one call: its number, architecture and first
    /// argument; the value it returns.
    fn verdict(nr: u32, audit_arch: u32, arg0: u32) -> u32 {
        let p = program().unwrap();
        let ops: Vec<(u16, u8, u8, u32)> = p
            .chunks(8)
            .map(|o| {
                (
                    u16::from_ne_bytes([o[0], o[1]]),
                    o[2],
                    o[3],
                    u32::from_ne_bytes([o[4], o[5], o[6], o[7]]),
                )
            })
            .collect();
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let (code, jt, jf, k) = ops[pc];
            let jump = |taken: bool| pc + 1 + usize::from(if taken { jt } else { jf });
            pc = match code {
                LD_W_ABS => {
                    acc = match k {
                        NR => nr,
                        ARCH => audit_arch,
                        ARG0 => arg0,
                        _ => panic!("reads {k}"),
                    };
                    pc + 1
                }
                JEQ => jump(acc == k),
                JGE => jump(acc >= k),
                JSET => jump(acc & k != 0),
                RET => return k,
                _ => panic!("unknown instruction {code:#x}"),
            };
        }
    }

    #[test]
    fn keyrings_and_new_user_namespaces_are_refused_and_the_rest_allowed() {
        let eperm = ERRNO | EPERM;
        for nr in [ADD_KEY, REQUEST_KEY, KEYCTL] {
            assert_eq!(verdict(nr, AUDIT_ARCH, 0), eperm);
        }
        assert_eq!(verdict(UNSHARE, AUDIT_ARCH, CLONE_NEWUSER), eperm);
        assert_eq!(
            verdict(UNSHARE, AUDIT_ARCH, CLONE_NEWUSER | 0x0002_0000),
            eperm
        );
        assert_eq!(verdict(CLONE, AUDIT_ARCH, CLONE_NEWUSER | 17), eperm);
        assert_eq!(verdict(CLONE3, AUDIT_ARCH, 0), ERRNO | ENOSYS);
        // Another ABI's numbers name other calls: refused whole.
        assert_eq!(verdict(KEYCTL | X32, AUDIT_ARCH, 0), eperm);
        assert_eq!(verdict(0, 0x4000_0003, 0), eperm);
        // Ordinary calls, a plain fork and a new mount namespace pass.
        for nr in [0, 1, 2, 59, 60, 231] {
            assert_eq!(verdict(nr, AUDIT_ARCH, 0), ALLOW);
        }
        assert_eq!(verdict(CLONE, AUDIT_ARCH, 17), ALLOW);
        assert_eq!(verdict(UNSHARE, AUDIT_ARCH, 0x0002_0000), ALLOW);
    }
}
