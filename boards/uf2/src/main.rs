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
//! `.data` that is its initial values in flash -- and padded to whole 256-byte pages. The
//! conversion is `elf2flash-core`'s (the library behind `elf2flash`, a port of the Pico
//! SDK's elf2uf2); this program only reads and writes the files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use elf2flash_core::{boards::RP2040, elf2uf2, Elf2Uf2Error, NoProgress};

/// The UF2 image of an ELF file for the RP2040: one 512-byte block per 256-byte flash page
/// (`elf2flash-core`, which refuses contents outside the RP2040's flash and RAM).
fn convert(elf: &[u8]) -> Result<Vec<u8>, Elf2Uf2Error> {
    let mut image = Vec::new();
    elf2uf2(elf, &mut image, &RP2040, NoProgress)?;
    Ok(image)
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
        e[4] = 1; // 32-bit
        e[5] = 1; // little endian
        e[6] = 1; // ELF version
        e[16..18].copy_from_slice(&2u16.to_le_bytes()); // executable
        e[18..20].copy_from_slice(&40u16.to_le_bytes()); // ARM
        e[20..24].copy_from_slice(&1u32.to_le_bytes()); // ELF version
        e[40..42].copy_from_slice(&52u16.to_le_bytes()); // header size
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

    // The UF2 specification's constants, written out so that the test checks the format
    // rather than the library against itself.
    const MAGIC_START0: u32 = 0x0A32_4655;
    const MAGIC_START1: u32 = 0x9E5D_5157;
    const MAGIC_END: u32 = 0x0AB1_6F30;
    const FLAG_FAMILY_ID: u32 = 0x0000_2000;
    const RP2040_FAMILY: u32 = 0xE48B_FF56;

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
    fn bad_input_is_an_error_not_a_panic() {
        assert!(convert(b"not an elf").is_err());
        assert!(convert(&[]).is_err());
        let mut short = elf(0x1000_0000, &[1, 2, 3, 4]);
        short.truncate(short.len() - 2);
        assert!(convert(&short).is_err());
        assert!(matches!(
            convert(&elf(0x1000_0000, &[])),
            Err(Elf2Uf2Error::InputFileNoMemoryPagesError)
        ));
        let mut headers_only = elf(0x1000_0000, &[1, 2, 3, 4]);
        headers_only.truncate(40);
        assert!(convert(&headers_only).is_err());
    }
}
