//! ELF to UF2 for the Raspberry Pi Pico (RP2040), so the firmware can be flashed without a
//! debug probe: hold BOOTSEL while plugging the Pico in, it mounts as a USB drive named
//! `RPI-RP2`, and copying a `.uf2` file onto it flashes and starts the program.
//!
//! ```text
//! uf2 <firmware.elf> <out.uf2>         write the image
//! uf2 <firmware.elf> <RPI-RP2 mount>   write <mount>/firmware.uf2: flashes the Pico
//! ```
//!
//! UF2 (Microsoft's USB Flashing Format) is a sequence of 512-byte blocks, each carrying
//! 256 bytes for one flash address, the RP2040's family ID and two magic numbers at each
//! end. The ELF's loadable segments are placed at their load (physical) addresses -- for
//! `.data` that is its initial values in flash -- and padded to whole 256-byte pages.
//! Only flash (XIP, `0x1000_0000` and up) may be written: a segment with contents anywhere
//! else is an error, since the boot ROM would drop it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// First magic number of every block ("UF2\n").
const MAGIC_START0: u32 = 0x0A32_4655;
/// Second magic number of every block.
const MAGIC_START1: u32 = 0x9E5D_5157;
/// Magic number that ends every block.
const MAGIC_END: u32 = 0x0AB1_6F30;
/// Flag: the block carries a family ID (in the field otherwise holding the file size).
const FLAG_FAMILY_ID: u32 = 0x0000_2000;
/// The RP2040's family ID.
const RP2040_FAMILY: u32 = 0xE48B_FF56;
/// Payload bytes per block (one flash page).
const PAGE: u32 = 256;
/// The RP2040's flash window (XIP), up to 16 MiB.
const FLASH: std::ops::Range<u32> = 0x1000_0000..0x1100_0000;

/// What went wrong, for the user.
#[derive(Debug, PartialEq, Eq)]
enum ConvertError {
    /// Not a 32-bit little-endian ARM ELF file.
    NotArmElf,
    /// A header or segment points past the end of the file.
    Truncated,
    /// A segment with contents outside the flash window.
    OutsideFlash { address: u32, size: u32 },
    /// No loadable contents at all.
    Empty,
}

impl std::fmt::Display for ConvertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvertError::NotArmElf => write!(f, "not a 32-bit little-endian ARM ELF file"),
            ConvertError::Truncated => write!(f, "the ELF file is truncated"),
            ConvertError::OutsideFlash { address, size } => write!(
                f,
                "a segment of {size} bytes at {address:#010x} is outside the RP2040's flash \
                 (0x10000000..0x11000000): the image would not boot"
            ),
            ConvertError::Empty => write!(f, "the ELF file has nothing to flash"),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ConvertError> {
    let s = b.get(at..at + 2).ok_or(ConvertError::Truncated)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ConvertError> {
    let s = b.get(at..at + 4).ok_or(ConvertError::Truncated)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The flash pages the ELF's loadable segments fill (address -> 256 bytes, zero padded).
fn pages(elf: &[u8]) -> Result<BTreeMap<u32, [u8; PAGE as usize]>, ConvertError> {
    const PT_LOAD: u32 = 1;
    const EM_ARM: u16 = 40;
    if elf.get(..4) != Some(b"\x7fELF".as_slice())
        || elf.get(4) != Some(&1) // 32-bit
        || elf.get(5) != Some(&1) // little endian
        || u16_at(elf, 18)? != EM_ARM
    {
        return Err(ConvertError::NotArmElf);
    }
    let phoff = u32_at(elf, 28)? as usize;
    let phentsize = u16_at(elf, 42)? as usize;
    let phnum = u16_at(elf, 44)? as usize;
    let mut pages = BTreeMap::new();
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let (kind, offset, paddr, filesz) = (
            u32_at(elf, ph)?,
            u32_at(elf, ph + 4)? as usize,
            u32_at(elf, ph + 12)?,
            u32_at(elf, ph + 16)?,
        );
        if kind != PT_LOAD || filesz == 0 {
            continue;
        }
        let end = paddr.checked_add(filesz);
        if !FLASH.contains(&paddr) || end.is_none_or(|e| e > FLASH.end) {
            return Err(ConvertError::OutsideFlash {
                address: paddr,
                size: filesz,
            });
        }
        let bytes = elf
            .get(offset..offset + filesz as usize)
            .ok_or(ConvertError::Truncated)?;
        for (k, &byte) in bytes.iter().enumerate() {
            let address = paddr + k as u32;
            let page = pages
                .entry(address / PAGE * PAGE)
                .or_insert([0u8; PAGE as usize]);
            page[(address % PAGE) as usize] = byte;
        }
    }
    if pages.is_empty() {
        return Err(ConvertError::Empty);
    }
    Ok(pages)
}

/// The UF2 image of an ELF file: one 512-byte block per 256-byte flash page.
fn convert(elf: &[u8]) -> Result<Vec<u8>, ConvertError> {
    let pages = pages(elf)?;
    let total = pages.len() as u32;
    let mut out = Vec::with_capacity(pages.len() * 512);
    for (number, (address, data)) in pages.iter().enumerate() {
        for word in [
            MAGIC_START0,
            MAGIC_START1,
            FLAG_FAMILY_ID,
            *address,
            PAGE,
            number as u32,
            total,
            RP2040_FAMILY,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(data);
        out.resize(out.len() + (476 - PAGE as usize), 0); // the data field is 476 bytes
        out.extend_from_slice(&MAGIC_END.to_le_bytes());
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        eprintln!("usage: uf2 <firmware.elf> <out.uf2 | mounted RPI-RP2 drive>");
        return ExitCode::from(2);
    };
    let elf = match std::fs::read(input) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("uf2: {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let image = match convert(&elf) {
        Ok(image) => image,
        Err(e) => {
            eprintln!("uf2: {input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut target = PathBuf::from(output);
    if Path::new(output).is_dir() {
        target.push("firmware.uf2");
    }
    if let Err(e) = std::fs::write(&target, &image) {
        eprintln!("uf2: {}: {e}", target.display());
        return ExitCode::FAILURE;
    }
    println!(
        "uf2: {} blocks ({} bytes of flash) written to {}",
        image.len() / 512,
        image.len() / 2,
        target.display()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ARM ELF with one loadable segment of `data` at `paddr`.
    fn elf(paddr: u32, data: &[u8]) -> Vec<u8> {
        let mut e = vec![0u8; 52 + 32];
        e[..4].copy_from_slice(b"\x7fELF");
        e[4] = 1;
        e[5] = 1;
        e[18..20].copy_from_slice(&40u16.to_le_bytes());
        e[28..32].copy_from_slice(&52u32.to_le_bytes()); // phoff
        e[42..44].copy_from_slice(&32u16.to_le_bytes()); // phentsize
        e[44..46].copy_from_slice(&1u16.to_le_bytes()); // phnum
        let ph = 52;
        e[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        e[ph + 4..ph + 8].copy_from_slice(&84u32.to_le_bytes()); // offset
        e[ph + 8..ph + 12].copy_from_slice(&paddr.to_le_bytes()); // vaddr
        e[ph + 12..ph + 16].copy_from_slice(&paddr.to_le_bytes()); // paddr
        e[ph + 16..ph + 20].copy_from_slice(&(data.len() as u32).to_le_bytes());
        e[ph + 20..ph + 24].copy_from_slice(&(data.len() as u32).to_le_bytes());
        e.extend_from_slice(data);
        e
    }

    fn word(image: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(image[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn a_segment_becomes_page_aligned_blocks() {
        // 300 bytes from 0x10000080: pages 0x10000000 and 0x10000100, padded with zeros.
        let data: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8 + 1).collect();
        let image = convert(&elf(0x1000_0080, &data)).unwrap();
        assert_eq!(image.len(), 2 * 512);
        for (n, address) in [0x1000_0000u32, 0x1000_0100].into_iter().enumerate() {
            let b = &image[n * 512..(n + 1) * 512];
            assert_eq!(word(b, 0), MAGIC_START0);
            assert_eq!(word(b, 4), MAGIC_START1);
            assert_eq!(word(b, 8), FLAG_FAMILY_ID);
            assert_eq!(word(b, 12), address);
            assert_eq!(word(b, 16), 256);
            assert_eq!(word(b, 20), n as u32);
            assert_eq!(word(b, 24), 2);
            assert_eq!(word(b, 28), RP2040_FAMILY);
            assert_eq!(word(b, 508), MAGIC_END);
            assert!(b[32 + 256..508].iter().all(|&x| x == 0));
        }
        // Bytes land at their addresses; the gap before 0x10000080 is zero.
        assert!(image[32..32 + 0x80].iter().all(|&x| x == 0));
        assert_eq!(&image[32 + 0x80..32 + 256], &data[..128]);
        assert_eq!(&image[512 + 32..512 + 32 + 172], &data[128..]);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(convert(b"not an elf"), Err(ConvertError::NotArmElf));
        assert_eq!(
            convert(&elf(0x2000_0000, &[1, 2, 3])),
            Err(ConvertError::OutsideFlash {
                address: 0x2000_0000,
                size: 3
            })
        );
        let mut short = elf(0x1000_0000, &[1, 2, 3, 4]);
        short.truncate(short.len() - 2);
        assert_eq!(convert(&short), Err(ConvertError::Truncated));
        assert_eq!(convert(&elf(0x1000_0000, &[])), Err(ConvertError::Empty));
    }
}
