//! What an uploaded photo says beyond its pixels is removed before it is stored: EXIF (GPS
//! position, camera serial numbers, dates), XMP, IPTC, comments and PNG text chunks. A phone
//! photo shared from an app would otherwise publish where it was taken. Only the EXIF
//! orientation is written back, alone, so the photo still shows upright (Mastodon re-encodes
//! uploads for the same reason). The containers are edited with `img-parts`, the orientation
//! read and written with `kamadak-exif`; the pixels are never decoded.

use exif::{Field, In, Tag, Value};
use img_parts::jpeg::{Jpeg, markers};
use img_parts::png::Png;
use img_parts::webp::WebP;
use img_parts::{Bytes, ImageEXIF};

/// The image without metadata; `Err` says why it could not be read.
pub fn strip(ext: &str, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let bytes = Bytes::from(bytes);
    match ext {
        "jpg" => {
            let mut jpeg = Jpeg::from_bytes(bytes).map_err(|e| e.to_string())?;
            let orientation = jpeg.exif().and_then(|raw| orientation(&raw));
            // APP1: EXIF and XMP; APP12: Ducky/picture info; APP13: IPTC; COM: comments.
            for marker in [markers::APP1, markers::APP12, markers::APP13, markers::COM] {
                jpeg.remove_segments_by_marker(marker);
            }
            if let Some(o) = orientation.filter(|o| *o != 1) {
                jpeg.set_exif(Some(orientation_only(o)?.into()));
            }
            Ok(jpeg.encoder().bytes().to_vec())
        }
        "png" => {
            let mut png = Png::from_bytes(bytes).map_err(|e| e.to_string())?;
            for kind in [*b"eXIf", *b"tEXt", *b"zTXt", *b"iTXt", *b"tIME"] {
                png.remove_chunks_by_type(kind);
            }
            Ok(png.encoder().bytes().to_vec())
        }
        "webp" => {
            let mut webp = WebP::from_bytes(bytes).map_err(|e| e.to_string())?;
            webp.set_exif(None);
            webp.remove_chunks_by_id(*b"XMP ");
            Ok(webp.encoder().bytes().to_vec())
        }
        // GIF carries no EXIF; its comment extensions are text the owner can see in the image
        // tools, left as they are.
        _ => Ok(bytes.to_vec()),
    }
}

fn orientation(raw: &[u8]) -> Option<u32> {
    let exif = exif::Reader::new().read_raw(raw.to_vec()).ok()?;
    exif.get_field(Tag::Orientation, In::PRIMARY)?
        .value
        .get_uint(0)
        .filter(|o| (1..=8).contains(o))
}

/// A TIFF structure holding the orientation alone.
fn orientation_only(o: u32) -> Result<Vec<u8>, String> {
    let field = Field {
        tag: Tag::Orientation,
        ifd_num: In::PRIMARY,
        value: Value::Short(vec![u16::try_from(o).map_err(|e| e.to_string())?]),
    };
    let mut writer = exif::experimental::Writer::new();
    writer.push_field(&field);
    let mut out = std::io::Cursor::new(Vec::new());
    writer.write(&mut out, false).map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exif_with_gps() -> Vec<u8> {
        let fields = [
            Field {
                tag: Tag::Orientation,
                ifd_num: In::PRIMARY,
                value: Value::Short(vec![6]),
            },
            Field {
                tag: Tag::Make,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"SerialCam 12345".to_vec()]),
            },
            Field {
                tag: Tag::GPSLatitudeRef,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"N".to_vec()]),
            },
            Field {
                tag: Tag::GPSLatitude,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![(52, 1).into(), (13, 1).into(), (3600, 100).into()]),
            },
        ];
        let mut writer = exif::experimental::Writer::new();
        for f in &fields {
            writer.push_field(f);
        }
        let mut out = std::io::Cursor::new(Vec::new());
        writer.write(&mut out, false).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_photo_loses_its_gps_position_xmp_and_comments_and_keeps_its_orientation() {
        // SOI, APP0 (JFIF), APP1 (EXIF, set below), APP1 (XMP), COM, SOS with its scan, EOI.
        let mut bytes = vec![0xFF, 0xD8];
        bytes.extend([
            0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
        ]);
        let xmp = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>52,13N</exif:GPSLatitude></x:xmpmeta>";
        bytes.extend([0xFF, 0xE1]);
        bytes.extend(u16::try_from(xmp.len() + 2).unwrap().to_be_bytes());
        bytes.extend(xmp);
        let comment = "庭 at home, Gartenstraße 5".as_bytes();
        bytes.extend([0xFF, 0xFE]);
        bytes.extend(u16::try_from(comment.len() + 2).unwrap().to_be_bytes());
        bytes.extend(comment);
        bytes.extend([0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        bytes.extend([0x12, 0x34, 0x56, 0x78]);
        bytes.extend([0xFF, 0xD9]);
        let mut jpeg = Jpeg::from_bytes(bytes.into()).unwrap();
        jpeg.set_exif(Some(exif_with_gps().into()));
        let photo = jpeg.encoder().bytes().to_vec();
        assert!(photo.windows(9).any(|w| w == b"SerialCam"));

        let clean = strip("jpg", photo).unwrap();
        for leak in [&b"SerialCam"[..], b"GPSLatitude", b"Gartenstra", b"xmpmeta"] {
            assert!(
                !clean.windows(leak.len()).any(|w| w == leak),
                "{:?} left",
                String::from_utf8_lossy(leak)
            );
        }
        let jpeg = Jpeg::from_bytes(clean.clone().into()).unwrap();
        let exif = exif::Reader::new()
            .read_raw(jpeg.exif().unwrap().to_vec())
            .unwrap();
        assert_eq!(exif.fields().count(), 1);
        assert_eq!(orientation(&jpeg.exif().unwrap()), Some(6));
        assert!(exif.get_field(Tag::GPSLatitude, In::PRIMARY).is_none());
        // The scan data is untouched.
        assert!(clean.windows(4).any(|w| w == [0x12, 0x34, 0x56, 0x78]));
        assert_eq!(
            imagesize::image_type(&clean).ok(),
            Some(imagesize::ImageType::Jpeg)
        );
    }

    #[test]
    fn png_text_chunks_go_and_the_image_stays() {
        let original = include_bytes!("../../static/avatar.png").to_vec();
        let mut png = Png::from_bytes(original.clone().into()).unwrap();
        let text = img_parts::png::PngChunk::new(
            *b"tEXt",
            Bytes::from_static(b"Location\0Gartenstrasse 5"),
        );
        let at = png.chunks().len() - 1;
        png.chunks_mut().insert(at, text);
        let tagged = png.encoder().bytes().to_vec();
        let clean = strip("png", tagged).unwrap();
        assert!(!clean.windows(12).any(|w| w == b"Gartenstrass"));
        assert_eq!(imagesize::blob_size(&clean).unwrap().width, 256);
    }
}
