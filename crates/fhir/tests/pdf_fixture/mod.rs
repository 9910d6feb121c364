//! Small PDFs made for the tests (our own report lines, drawn with lopdf
//! the way report writers draw them): shared by the unit tests of
//! `text::pdf` (through `crate::pdf_fixture`) and the integration tests
//! (`tests/it`), so no binary fixture is committed.

#![allow(dead_code)] // each includer uses a different part

use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};

/// A PDF with one page per entry of `pages`, each drawn by the given
/// content operators in Helvetica (WinAnsi), as a report writer makes it.
pub fn pdf(pages: &[Vec<Operation>]) -> Vec<u8> {
    let mut document = Document::with_version("1.5");
    let pages_id = document.new_object_id();
    let font_id = document.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = document.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids = Vec::new();
    for operations in pages {
        let content = Content {
            operations: operations.clone(),
        };
        let content_id =
            document.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        let page_id = document.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        });
        kids.push(page_id.into());
    }
    document.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Count" => kids.len() as i64,
            "Kids" => kids,
        }),
    );
    let catalog_id = document.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    document.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).unwrap();
    bytes
}

pub fn op(operator: &str, operands: Vec<Object>) -> Operation {
    Operation::new(operator, operands)
}

/// A string shown in the fixture's font (WinAnsi, i.e. windows-1252).
pub fn text(s: &str) -> Object {
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(s);
    Object::string_literal(bytes.into_owned())
}

/// Lines drawn the way many report writers do: one text object, a `Td`
/// down for each line.
pub fn lines_with_td(lines: &[&str]) -> Vec<Operation> {
    let mut operations = vec![
        op("BT", vec![]),
        op("Tf", vec!["F1".into(), 11.into()]),
        op("Td", vec![72.into(), 760.into()]),
    ];
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            operations.push(op("Td", vec![0.into(), (-14).into()]));
        }
        operations.push(op("Tj", vec![text(line)]));
    }
    operations.push(op("ET", vec![]));
    operations
}

/// A page that only paints an image, as a scanner makes it.
pub fn scanned_page() -> Vec<Operation> {
    vec![
        op("q", vec![]),
        op(
            "cm",
            vec![
                595.into(),
                0.into(),
                0.into(),
                842.into(),
                0.into(),
                0.into(),
            ],
        ),
        op("Do", vec!["Im1".into()]),
        op("Q", vec![]),
    ]
}
