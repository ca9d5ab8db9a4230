//! The binary format of a vector snapshot's metadata: dimensions,
//! quantization, watermark, id allocator and, per (tenant, scope) partition,
//! its ids and keys in storage order (the order of the vectors file).
//!
//! Owns: encoding and bounds-checked decoding, with a magic, a version and an
//! FNV-1a checksum so a truncated or foreign file is rejected, not misread.
//! Must never: panic on bad input (every read is checked) or touch the disk.

use crate::error::IndexError;
use crate::types::Quantization;

const MAGIC: &[u8; 8] = b"RSTRVEC\0";
const VERSION: u32 = 1;

#[derive(Debug, PartialEq)]
pub(crate) struct MetaPartition {
    pub(crate) tenant: String,
    pub(crate) scope: String,
    pub(crate) entries: Vec<(u64, String)>,
}

#[derive(Debug, PartialEq)]
pub(crate) struct Meta {
    pub(crate) dims: usize,
    pub(crate) quantization: Quantization,
    pub(crate) watermark: u64,
    pub(crate) next_id: u64,
    pub(crate) partitions: Vec<MetaPartition>,
}

pub(crate) struct Header {
    pub(crate) dims: usize,
    pub(crate) quantization: Quantization,
    pub(crate) watermark: u64,
    pub(crate) next_id: u64,
}

/// Streams the meta of `partitions` (tenant, scope, (id, key) pairs) into bytes.
pub(crate) fn encode<'a, P, E>(header: &Header, partitions: P) -> Vec<u8>
where
    P: ExactSizeIterator<Item = (&'a str, &'a str, E)>,
    E: ExactSizeIterator<Item = (u64, &'a str)>,
{
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(header.dims as u64).to_le_bytes());
    out.push(header.quantization.tag());
    out.extend_from_slice(&header.watermark.to_le_bytes());
    out.extend_from_slice(&header.next_id.to_le_bytes());
    out.extend_from_slice(&(partitions.len() as u64).to_le_bytes());
    for (tenant, scope, entries) in partitions {
        put_str(&mut out, tenant);
        put_str(&mut out, scope);
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (id, key) in entries {
            out.extend_from_slice(&id.to_le_bytes());
            put_str(&mut out, key);
        }
    }
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Meta, IndexError> {
    let body_len = bytes
        .len()
        .checked_sub(8)
        .ok_or_else(|| corrupt("truncated"))?;
    let (body, sum) = bytes.split_at(body_len);
    let mut r = Reader { bytes: sum, at: 0 };
    if r.u64()? != fnv1a(body) {
        return Err(corrupt("checksum mismatch"));
    }
    let mut r = Reader { bytes: body, at: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(corrupt("not a vector snapshot"));
    }
    let version = u32::from_le_bytes(r.array()?);
    if version != VERSION {
        return Err(corrupt(&format!("unsupported version {version}")));
    }
    let dims = usize::try_from(r.u64()?).map_err(|_| corrupt("dimensions"))?;
    let quantization =
        Quantization::from_tag(r.take(1)?[0]).ok_or_else(|| corrupt("quantization"))?;
    let watermark = r.u64()?;
    let next_id = r.u64()?;
    let count = r.len()?;
    let mut partitions = Vec::with_capacity(count.min(1 << 20));
    for _ in 0..count {
        let tenant = r.string()?;
        let scope = r.string()?;
        let n = r.len()?;
        let mut entries = Vec::with_capacity(n.min(1 << 24));
        for _ in 0..n {
            let id = r.u64()?;
            let key = r.string()?;
            entries.push((id, key));
        }
        partitions.push(MetaPartition {
            tenant,
            scope,
            entries,
        });
    }
    if r.at != body.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(Meta {
        dims,
        quantization,
        watermark,
        next_id,
        partitions,
    })
}

fn corrupt(what: &str) -> IndexError {
    IndexError::Corrupt(format!("vector snapshot meta: {what}"))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        let end = self.at.checked_add(n).ok_or_else(|| corrupt("length"))?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| corrupt("truncated"))?;
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], IndexError> {
        self.take(N)?.try_into().map_err(|_| corrupt("truncated"))
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn len(&mut self) -> Result<usize, IndexError> {
        usize::try_from(self.u64()?).map_err(|_| corrupt("length"))
    }

    fn string(&mut self) -> Result<String, IndexError> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt("utf-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let header = Header {
            dims: 3,
            quantization: Quantization::F16,
            watermark: 77,
            next_id: 5,
        };
        let parts = [("t", "s", vec![(0u64, "a"), (4, "b")]), ("t2", "s", vec![])];
        encode(
            &header,
            parts
                .iter()
                .map(|(t, s, e)| (*t, *s, e.iter().map(|(id, k)| (*id, *k)))),
        )
    }

    #[test]
    fn roundtrip() {
        let meta = decode(&sample()).expect("decodes");
        assert_eq!(meta.dims, 3);
        assert_eq!(meta.quantization, Quantization::F16);
        assert_eq!(meta.watermark, 77);
        assert_eq!(meta.next_id, 5);
        assert_eq!(meta.partitions.len(), 2);
        assert_eq!(
            meta.partitions[0].entries,
            vec![(0, "a".into()), (4, "b".into())]
        );
    }

    #[test]
    fn rejects_damage() {
        let bytes = sample();
        for cut in [0, 7, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(decode(&flipped).is_err());
    }
}
