//! NumPy `.npy` files (format v1.0 written; v1.0/v2.0 read), little endian, C order.
//!
//! Layout: the magic `\x93NUMPY`, a version (major, minor), the header length (u16 in v1, u32 in
//! v2), then an ASCII Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (T, N), }`
//! padded with spaces and a final `\n`, then the raw array. We pad the header so the data starts
//! at a multiple of 64 bytes (what NumPy itself does), which keeps every element aligned when the
//! file is memory-mapped at a page boundary.
//!
//! Reading never copies the array: [`MappedNpy`] maps the file read-only and hands out slices
//! cast in place by bytemuck, after checking dtype, length and alignment.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::error::{Error, Result};

#[cfg(target_endian = "big")]
compile_error!(
    "the .npy reader/writer casts little-endian data in place: big-endian hosts are not supported"
);

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Data starts at a multiple of this many bytes in the files we write.
const ALIGN: usize = 64;

/// An element type with a NumPy descriptor. `Pod` lets slices be cast from mapped bytes.
pub trait NpyDtype: bytemuck::Pod {
    /// The `descr` string NumPy writes for this type (little endian).
    const DESCR: &'static str;
}

impl NpyDtype for f32 {
    const DESCR: &'static str = "<f4";
}
impl NpyDtype for u8 {
    const DESCR: &'static str = "|u1";
}
impl NpyDtype for i16 {
    const DESCR: &'static str = "<i2";
}

fn npy_err(path: &Path, msg: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// The header bytes (magic through the terminating newline) for an array of `shape` and `descr`.
fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    // A 1-tuple needs its trailing comma in Python syntax.
    let shape_str = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_str}, }}");
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(ALIGN) - unpadded));
    dict.push('\n');
    let mut out = Vec::with_capacity(unpadded.next_multiple_of(ALIGN));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Writes `data` as a C-order `.npy` v1.0 array of `shape`; the file is fsynced before returning.
pub fn write_npy<T: NpyDtype>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(npy_err(
            path,
            format!(
                "refusing to write: shape {shape:?} holds {n} elements but {} were given",
                data.len()
            ),
        ));
    }
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = BufWriter::new(file);
    w.write_all(&header_bytes(T::DESCR, shape))
        .and_then(|_| w.write_all(bytemuck::cast_slice(data)))
        .and_then(|_| w.flush())
        .map_err(|e| Error::io(path, e))?;
    w.get_ref().sync_all().map_err(|e| Error::io(path, e))
}

/// The fields of a parsed header dict.
#[derive(Debug, PartialEq)]
struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// The text after `'key':` in the dict, leading blanks removed.
fn dict_value<'a>(dict: &'a str, key: &str) -> std::result::Result<&'a str, String> {
    let pat = format!("'{key}':");
    let at = dict
        .find(&pat)
        .ok_or_else(|| format!("header has no '{key}' entry (header: {dict})"))?;
    Ok(dict[at + pat.len()..].trim_start())
}

/// Parses the Python dict literal NumPy writes. Only the three keys NumPy defines are read.
fn parse_header(dict: &str) -> std::result::Result<Header, String> {
    let descr_s = dict_value(dict, "descr")?;
    let descr = descr_s
        .strip_prefix('\'')
        .and_then(|s| s.split_once('\''))
        .map(|(d, _)| d.to_string())
        .ok_or_else(|| format!("'descr' is not a plain dtype string (header: {dict})"))?;
    let fo = dict_value(dict, "fortran_order")?;
    let fortran_order = if fo.starts_with("False") {
        false
    } else if fo.starts_with("True") {
        true
    } else {
        return Err(format!(
            "'fortran_order' is neither True nor False (header: {dict})"
        ));
    };
    let sh = dict_value(dict, "shape")?;
    let inner = sh
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or_else(|| format!("'shape' is not a tuple (header: {dict})"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("shape entry '{s}' is not a non-negative integer"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Header {
        descr,
        fortran_order,
        shape,
    })
}

/// Bytes per element of a descr like `<f4`, `|u1`, `>i8`.
fn itemsize(descr: &str) -> Option<usize> {
    let digits = descr.get(2..)?;
    digits.parse().ok().filter(|&n| n > 0)
}

/// A read-only memory-mapped `.npy` file with its header parsed and its length checked.
pub struct MappedNpy {
    path: PathBuf,
    map: Mmap,
    descr: String,
    shape: Vec<usize>,
    data_offset: usize,
}

impl MappedNpy {
    /// Maps `path` and validates magic, version, header, C order and data length.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_inner(path, None, |_| Ok(()))
    }

    /// As [`MappedNpy::open`], but checks the header's dtype against `descr` and its shape with
    /// `check_shape` before the data length, so that an edited or foreign header is reported as
    /// such rather than as a file of the wrong length.
    pub fn open_expecting(
        path: &Path,
        descr: &str,
        check_shape: impl FnOnce(&[usize]) -> Result<()>,
    ) -> Result<Self> {
        Self::open_inner(path, Some(descr), check_shape)
    }

    fn open_inner(
        path: &Path,
        expect: Option<&str>,
        check_shape: impl FnOnce(&[usize]) -> Result<()>,
    ) -> Result<Self> {
        if path.is_dir() {
            return Err(npy_err(
                path,
                "is a directory, not a .npy file; re-create the file",
            ));
        }
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < 10 {
            return Err(npy_err(
                path,
                format!("file is {len} bytes, too short for a .npy header (at least 10 expected)"),
            ));
        }
        // SAFETY: the map is read-only; the panel format treats its files as immutable once
        // written (writers build a new directory and rename it in), so no one truncates it under us.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        if &map[..6] != MAGIC {
            return Err(npy_err(
                path,
                format!(
                    "bad magic: expected \\x93NUMPY, found {:?}; not a .npy file (write it with numpy.save)",
                    String::from_utf8_lossy(&map[..6])
                ),
            ));
        }
        let (major, minor) = (map[6], map[7]);
        let (header_len, header_start) = match major {
            1 => (u16::from_le_bytes([map[8], map[9]]) as usize, 10),
            2 if map.len() >= 12 => (
                u32::from_le_bytes([map[8], map[9], map[10], map[11]]) as usize,
                12,
            ),
            _ => {
                return Err(npy_err(
                    path,
                    format!("unsupported .npy version {major}.{minor}: expected 1.0 or 2.0"),
                ))
            }
        };
        let data_offset = header_start + header_len;
        let dict = map
            .get(header_start..data_offset)
            .ok_or_else(|| {
                npy_err(
                    path,
                    format!(
                        "header claims {header_len} bytes but the file is {len} bytes (truncated)"
                    ),
                )
            })
            .and_then(|h| {
                std::str::from_utf8(h).map_err(|_| npy_err(path, "header is not ASCII text"))
            })?;
        let header = parse_header(dict).map_err(|m| npy_err(path, m))?;
        if header.fortran_order {
            return Err(npy_err(
                path,
                "array is in Fortran order, expected C order: save np.ascontiguousarray(a) instead",
            ));
        }
        if let Some(want) = expect.filter(|&d| d != header.descr) {
            return Err(npy_err(
                path,
                format!(
                    "dtype: expected '{want}', found '{}' in the header (shape {:?}): the file holds \
                     another type or its header was edited; re-create it",
                    header.descr, header.shape
                ),
            ));
        }
        check_shape(&header.shape)?;
        let size = itemsize(&header.descr).ok_or_else(|| {
            npy_err(
                path,
                format!(
                    "unsupported dtype '{}': expected a plain numeric dtype",
                    header.descr
                ),
            )
        })?;
        let expected = header
            .shape
            .iter()
            .try_fold(size, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| npy_err(path, format!("shape {:?} overflows", header.shape)))?;
        let found = map.len() - data_offset;
        if found != expected {
            let what = if found < expected {
                "truncated"
            } else {
                "has trailing bytes"
            };
            return Err(npy_err(
                path,
                format!(
                    "{what}: shape {:?} of '{}' needs {expected} data bytes, found {found}; re-create the file",
                    header.shape, header.descr
                ),
            ));
        }
        Ok(MappedNpy {
            path: path.to_path_buf(),
            map,
            descr: header.descr,
            shape: header.shape,
            data_offset,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn descr(&self) -> &str {
        &self.descr
    }

    /// The array's elements as `T`, cast in place (dtype and alignment checked).
    pub fn view<T: NpyDtype>(&self) -> Result<&[T]> {
        if self.descr != T::DESCR {
            return Err(npy_err(
                &self.path,
                format!(
                    "dtype: expected '{}' ({}), found '{}'",
                    T::DESCR,
                    std::any::type_name::<T>(),
                    self.descr
                ),
            ));
        }
        bytemuck::try_cast_slice(&self.map[self.data_offset..]).map_err(|e| {
            npy_err(
                &self.path,
                format!(
                    "data at byte offset {} cannot be viewed as {} ({e:?}): expected {}-byte alignment; \
                     rewrite the file with numpy.save",
                    self.data_offset,
                    std::any::type_name::<T>(),
                    std::mem::align_of::<T>()
                ),
            )
        })
    }

    /// Checks once that the file views as `T`, so later accesses cannot fail.
    pub fn into_typed<T: NpyDtype>(self) -> Result<NpyArray<T>> {
        self.view::<T>()?;
        Ok(NpyArray {
            npy: self,
            _elem: PhantomData,
        })
    }
}

/// A mapped `.npy` file already known to hold `T`s: `as_slice` is infallible.
pub struct NpyArray<T> {
    npy: MappedNpy,
    _elem: PhantomData<T>,
}

impl<T: NpyDtype> NpyArray<T> {
    pub fn open(path: &Path) -> Result<Self> {
        MappedNpy::open_expecting(path, T::DESCR, |_| Ok(()))?.into_typed()
    }

    pub fn path(&self) -> &Path {
        self.npy.path()
    }

    pub fn shape(&self) -> &[usize] {
        self.npy.shape()
    }

    /// The whole file as mapped (header and data), e.g. for fingerprinting.
    pub fn file_bytes(&self) -> &[u8] {
        &self.npy.map
    }

    pub fn as_slice(&self) -> &[T] {
        // Cannot panic: dtype, length and alignment were checked in `into_typed`.
        bytemuck::cast_slice(&self.npy.map[self.npy.data_offset..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64_and_parses_back() {
        for shape in [vec![], vec![7], vec![3, 4], vec![700, 300, 15]] {
            let h = header_bytes("<f4", &shape);
            assert_eq!(h.len() % ALIGN, 0);
            assert_eq!(*h.last().unwrap(), b'\n');
            let dict = std::str::from_utf8(&h[10..]).unwrap();
            let parsed = parse_header(dict).unwrap();
            assert_eq!(
                parsed,
                Header {
                    descr: "<f4".into(),
                    fortran_order: false,
                    shape
                }
            );
        }
    }

    #[test]
    fn parses_numpy_written_headers() {
        // Verbatim from numpy 1.x / 2.x `np.save`.
        let h =
            parse_header("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }   \n").unwrap();
        assert_eq!(h.shape, vec![5]);
        assert_eq!(h.descr, "|u1");
        let h = parse_header("{'descr': '<i2', 'fortran_order': True, 'shape': (2, 3), }").unwrap();
        assert!(h.fortran_order);
        assert_eq!(h.shape, vec![2, 3]);
        assert!(
            parse_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }")
                .is_err()
        );
    }

    #[test]
    fn round_trip_and_rejections() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<i16> = (0..12).map(|x| x * 3 - 7).collect();
        write_npy(&p, &[3, 4], &data).unwrap();
        let m = MappedNpy::open(&p).unwrap();
        assert_eq!(m.shape(), &[3, 4]);
        assert_eq!(m.view::<i16>().unwrap(), &data[..]);
        let err = m.view::<f32>().unwrap_err().to_string();
        assert!(
            err.contains("expected '<f4'") && err.contains("found '<i2'"),
            "{err}"
        );

        // A hand-made header whose data starts at an odd offset: length fine, alignment not.
        let q = dir.path().join("odd.npy");
        let mut dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }".to_string();
        while (10 + dict.len() + 1).is_multiple_of(2) {
            dict.push(' ');
        }
        dict.push('\n');
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend_from_slice(&[0u8; 8]);
        std::fs::write(&q, &bytes).unwrap();
        let err = MappedNpy::open(&q)
            .unwrap()
            .view::<f32>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("alignment"), "{err}");

        let f = dir.path().join("f.npy");
        let mut bytes = header_bytes("<f4", &[2]);
        let at = bytes.windows(5).position(|w| w == b"False").unwrap();
        bytes[at..at + 5].copy_from_slice(b"True ");
        bytes.extend_from_slice(&[0u8; 8]);
        std::fs::write(&f, &bytes).unwrap();
        let err = MappedNpy::open(&f).err().unwrap().to_string();
        assert!(err.contains("Fortran order"), "{err}");
    }
}
