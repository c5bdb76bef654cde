//! A tiny classic-BPF assembler for seccomp programs: forward jumps to labels, resolved once.
//!
//! Only what a seccomp filter needs: absolute 32-bit loads from `seccomp_data`, `and`, the
//! conditional jumps `jeq`/`jge`/`jset`, `ja` and `ret`. Conditional jump offsets are 8 bits in
//! classic BPF; the resolver refuses a program whose conditional jump would need more than 255
//! instructions instead of producing a wrong one.

use super::SeccompError;

// Instruction classes and modes (linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_W: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGE: u16 = 0x30;
const BPF_K: u16 = 0x00;

/// The kernel's limit on the length of one filter (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

/// One BPF instruction, laid out exactly like the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A complete, resolved seccomp program, ready for [`super::install`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfProgram {
    insns: Vec<Insn>,
}

impl BpfProgram {
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// The program as the bytes the kernel reads (8 bytes per instruction, native endian), e.g.
    /// to hand it to another process through a pipe.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.insns.len() * 8);
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        out
    }

    /// Inverse of [`BpfProgram::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SeccompError> {
        if bytes.is_empty() || bytes.len() % 8 != 0 || bytes.len() / 8 > MAX_INSNS {
            return Err(SeccompError::BadProgramBytes { len: bytes.len() });
        }
        let insns = bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(BpfProgram { insns })
    }
}

/// A jump target: the next instruction, or a label placed later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Next,
    Label(Label),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Op {
    Ld(u32),
    And(u32),
    Jmp {
        op: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ja(Label),
    Ret(u32),
}

/// Program under construction.
#[derive(Default)]
pub struct Asm {
    ops: Vec<Op>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fresh, not yet placed label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Place `l` at the next instruction.
    pub fn bind(&mut self, l: Label) {
        debug_assert!(self.labels[l.0].is_none(), "label bound twice");
        self.labels[l.0] = Some(self.ops.len());
    }

    /// A = 32-bit word at `offset` in `seccomp_data`.
    pub fn ld(&mut self, offset: u32) {
        self.ops.push(Op::Ld(offset));
    }

    /// A &= k
    pub fn and(&mut self, k: u32) {
        self.ops.push(Op::And(k));
    }

    /// if A == k goto jt else goto jf
    pub fn jeq(&mut self, k: u32, jt: Target, jf: Target) {
        self.ops.push(Op::Jmp {
            op: BPF_JEQ,
            k,
            jt,
            jf,
        });
    }

    /// if A >= k (unsigned) goto jt else goto jf
    pub fn jge(&mut self, k: u32, jt: Target, jf: Target) {
        self.ops.push(Op::Jmp {
            op: BPF_JGE,
            k,
            jt,
            jf,
        });
    }

    /// goto l (32-bit offset)
    pub fn ja(&mut self, l: Label) {
        self.ops.push(Op::Ja(l));
    }

    /// return k (a `SECCOMP_RET_*` value)
    pub fn ret(&mut self, k: u32) {
        self.ops.push(Op::Ret(k));
    }

    /// Resolve labels into offsets.
    pub fn finish(self) -> Result<BpfProgram, SeccompError> {
        if self.ops.len() > MAX_INSNS {
            return Err(SeccompError::ProgramTooLarge {
                insns: self.ops.len(),
            });
        }
        let place = |l: Label| -> Result<usize, SeccompError> {
            self.labels[l.0].ok_or(SeccompError::Internal {
                what: "jump to a label that was never placed",
            })
        };
        let offset = |pc: usize, t: Target| -> Result<usize, SeccompError> {
            match t {
                Target::Next => Ok(0),
                Target::Label(l) => {
                    let to = place(l)?;
                    to.checked_sub(pc + 1).ok_or(SeccompError::Internal {
                        what: "backward jump (classic BPF only jumps forward)",
                    })
                }
            }
        };
        let mut insns = Vec::with_capacity(self.ops.len());
        for (pc, op) in self.ops.iter().enumerate() {
            let insn = match *op {
                Op::Ld(k) => Insn {
                    code: BPF_LD | BPF_W | BPF_ABS,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Op::And(k) => Insn {
                    code: BPF_ALU | BPF_AND | BPF_K,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Op::Ret(k) => Insn {
                    code: BPF_RET | BPF_K,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Op::Ja(l) => Insn {
                    code: BPF_JMP | BPF_JA,
                    jt: 0,
                    jf: 0,
                    k: u32::try_from(offset(pc, Target::Label(l))?).map_err(|_| {
                        SeccompError::ProgramTooLarge {
                            insns: self.ops.len(),
                        }
                    })?,
                },
                Op::Jmp { op, k, jt, jf } => {
                    let short = |t| -> Result<u8, SeccompError> {
                        u8::try_from(offset(pc, t)?).map_err(|_| SeccompError::JumpTooFar { pc })
                    };
                    Insn {
                        code: BPF_JMP | op | BPF_K,
                        jt: short(jt)?,
                        jf: short(jf)?,
                        k,
                    }
                }
            };
            insns.push(insn);
        }
        if !matches!(self.ops.last(), Some(Op::Ret(_))) {
            return Err(SeccompError::Internal {
                what: "program does not end with a return",
            });
        }
        Ok(BpfProgram { insns })
    }
}

#[cfg(test)]
/// What a program returns for one syscall, computed without the kernel (for tests and for
/// explaining a filter): a classic-BPF interpreter for the instructions [`Asm`] emits.
pub fn run(prog: &BpfProgram, data: &SeccompData) -> Result<u32, SeccompError> {
    run_counting(prog, data).map(|(ret, _)| ret)
}

#[cfg(test)]
/// [`run`], also returning how many instructions were executed (the filter's cost per syscall).
pub fn run_counting(prog: &BpfProgram, data: &SeccompData) -> Result<(u32, usize), SeccompError> {
    let bytes = data.to_bytes();
    let insns = prog.instructions();
    let mut a: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0usize;
    loop {
        steps += 1;
        let i = insns.get(pc).ok_or(SeccompError::Internal {
            what: "program ran off its end",
        })?;
        pc += 1;
        match i.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                let o = i.k as usize;
                let w = bytes.get(o..o + 4).ok_or(SeccompError::Internal {
                    what: "load outside seccomp_data",
                })?;
                a = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
            }
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= i.k,
            c if c == BPF_RET | BPF_K => return Ok((i.k, steps)),
            c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
            c => {
                let taken = match c & !(BPF_JMP | BPF_K) {
                    BPF_JEQ => a == i.k,
                    BPF_JGE => a >= i.k,
                    _ => {
                        return Err(SeccompError::Internal {
                            what: "unknown instruction",
                        })
                    }
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
        }
    }
}

/// `struct seccomp_data` (linux/seccomp.h): what a filter sees of one syscall.
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// Byte offsets into `seccomp_data`.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;

/// Offset of the low (`hi == false`) or high 32 bits of argument `n` (little-endian layout).
pub const fn off_arg(n: u8, hi: bool) -> u32 {
    let base = 16 + 8 * n as u32;
    if cfg!(target_endian = "little") == hi {
        base + 4
    } else {
        base
    }
}

#[cfg(test)]
impl SeccompData {
    fn to_bytes(self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_forward_labels_and_runs() {
        let mut a = Asm::new();
        let yes = a.label();
        a.ld(OFF_NR);
        a.jeq(7, Target::Label(yes), Target::Next);
        a.jge(100, Target::Next, Target::Label(yes));
        a.ret(1);
        a.bind(yes);
        a.ret(2);
        let p = a.finish().unwrap();
        assert_eq!(p.instructions()[1].jt, 2);
        assert_eq!(p.instructions()[2].jf, 1);
        let r = |nr| {
            run(
                &p,
                &SeccompData {
                    nr,
                    ..Default::default()
                },
            )
            .unwrap()
        };
        assert_eq!(r(7), 2);
        assert_eq!(r(8), 2);
        assert_eq!(r(100), 1);
    }

    #[test]
    fn too_far_conditional_jump_is_an_error_not_a_wrong_program() {
        let mut a = Asm::new();
        let far = a.label();
        a.ld(OFF_NR);
        a.jeq(1, Target::Label(far), Target::Next);
        for _ in 0..300 {
            a.ret(0);
        }
        a.bind(far);
        a.ret(1);
        assert!(matches!(
            a.finish(),
            Err(SeccompError::JumpTooFar { pc: 1 })
        ));
    }

    #[test]
    fn ja_reaches_far_and_bytes_round_trip() {
        let mut a = Asm::new();
        let far = a.label();
        a.ja(far);
        for _ in 0..300 {
            a.ret(0);
        }
        a.bind(far);
        a.ret(9);
        let p = a.finish().unwrap();
        assert_eq!(run(&p, &SeccompData::default()).unwrap(), 9);
        assert_eq!(BpfProgram::from_bytes(&p.to_bytes()).unwrap(), p);
        assert!(BpfProgram::from_bytes(&[0; 7]).is_err());
    }

    #[test]
    fn argument_offsets() {
        let d = SeccompData {
            args: [0, 0x1111_2222_3333_4444, 0, 0, 0, 0],
            ..Default::default()
        };
        for (hi, want) in [(false, 0x3333_4444), (true, 0x1111_2222)] {
            let mut a = Asm::new();
            a.ld(off_arg(1, hi));
            let l = a.label();
            a.jeq(want, Target::Label(l), Target::Next);
            a.ret(0);
            a.bind(l);
            a.ret(1);
            assert_eq!(run(&a.finish().unwrap(), &d).unwrap(), 1);
        }
    }
}
