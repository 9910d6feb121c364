//! Seed DiagnosticReports written for these tests (radiology language, our
//! own wording), rendered in the forms servers deliver: a text/plain
//! attachment, an XHTML narrative, a conclusion on its own, an HTML
//! attachment beside a short conclusion, and a flattened Latin-1 export with
//! de-identification tokens.

use base64::Engine as _;
use serde_json::{Value, json};

struct Exam {
    loinc: &'static str,
    display: &'static str,
    history: &'static str,
    technique: &'static str,
    findings: &'static [&'static str],
    impression: &'static [&'static str],
}

const EXAMS: &[Exam] = &[
    Exam {
        loinc: "36643-5",
        display: "XR Chest 2 Views",
        history: "Cough and fever for three days.",
        technique: "PA and lateral views of the chest.",
        findings: &[
            "The heart size is normal.",
            "There is a patchy consolidation in the right lower lobe.",
            "No pleural effusion or pneumothorax.",
        ],
        impression: &["Right lower lobe pneumonia.", "No pneumothorax."],
    },
    Exam {
        loinc: "36643-5",
        display: "XR Chest 2 Views",
        history: "XXXX-year-old with shortness of breath.",
        technique: "Frontal and lateral radiographs.",
        findings: &[
            "The cardiac silhouette is enlarged.",
            "Small bilateral pleural effusions are present.",
            "Mild pulmonary edema.",
        ],
        impression: &[
            "Cardiomegaly with small bilateral pleural effusions.",
            "Mild interstitial edema.",
        ],
    },
    Exam {
        loinc: "30799-1",
        display: "CT Head WO contrast",
        history: "Fall with head strike, on anticoagulation.",
        technique: "Axial CT images of the head without contrast.",
        findings: &[
            "No intracranial hemorrhage, mass effect or midline shift.",
            "The ventricles are normal in size.",
            "No acute fracture of the calvarium.",
        ],
        impression: &["No acute intracranial abnormality."],
    },
    Exam {
        loinc: "24627-2",
        display: "CT Chest",
        history: "Follow-up of a pulmonary nodule.",
        technique: "Helical CT of the chest with intravenous contrast.",
        findings: &[
            "A 6 mm nodule in the left upper lobe is stable since the prior study.",
            "No mediastinal lymphadenopathy.",
            "No pleural effusion.",
        ],
        impression: &[
            "Stable 6 mm left upper lobe nodule.",
            "Follow-up CT in 12 months is recommended.",
        ],
    },
    Exam {
        loinc: "24558-9",
        display: "CT Abdomen and Pelvis W contrast",
        history: "Right lower quadrant pain.",
        technique: "CT of the abdomen and pelvis after intravenous contrast.",
        findings: &[
            "The appendix is dilated to 11 mm with periappendiceal fat stranding.",
            "No free air.",
            "The liver, spleen and pancreas are unremarkable.",
            "A 2.1 x 1.4 cm simple cyst in the right kidney.",
        ],
        impression: &[
            "Acute appendicitis without perforation.",
            "Incidental right renal cyst.",
        ],
    },
    Exam {
        loinc: "24531-6",
        display: "US Kidney",
        history: "Flank pain and hematuria.",
        technique: "Grayscale and Doppler ultrasound of both kidneys.",
        findings: &[
            "Moderate hydronephrosis of the left kidney.",
            "A 4 mm stone at the left ureterovesical junction.",
            "The right kidney is normal.",
        ],
        impression: &["Obstructing 4 mm left distal ureteral stone with moderate hydronephrosis."],
    },
    Exam {
        loinc: "24590-2",
        display: "MR Brain WO and W contrast",
        history: "Sudden onset of right-sided weakness.",
        technique: "Multiplanar multisequence MR imaging of the brain.",
        findings: &[
            "Restricted diffusion in the left middle cerebral artery territory.",
            "No hemorrhagic transformation.",
            "No mass.",
        ],
        impression: &["Acute left MCA territory infarct.", "No hemorrhage."],
    },
    Exam {
        loinc: "36643-5",
        display: "XR Chest 2 Views",
        history: "Preoperative evaluation.",
        technique: "Two views of the chest.",
        findings: &[
            "The lungs are clear.",
            "No focal consolidation, effusion, or pneumothorax.",
            "The heart and mediastinum are within normal limits.",
        ],
        impression: &["No acute cardiopulmonary disease."],
    },
    Exam {
        loinc: "37388-6",
        display: "XR Wrist",
        history: "Fall on an outstretched hand.",
        technique: "Three views of the left wrist.",
        findings: &[
            "There is a nondisplaced fracture of the distal radius.",
            "The carpal bones are intact.",
            "Soft tissue swelling over the dorsal wrist.",
        ],
        impression: &["Nondisplaced left distal radius fracture."],
    },
    Exam {
        loinc: "24627-2",
        display: "CT Chest",
        history: "Chest pain and elevated D-dimer.",
        technique: "CT angiography of the chest.",
        findings: &[
            "Filling defects in the right lower lobe segmental pulmonary arteries.",
            "No right heart strain.",
            "Mild bibasilar atelectasis.",
        ],
        impression: &[
            "Acute right lower lobe pulmonary embolism.",
            "Bibasilar atelectasis.",
        ],
    },
];

/// The five ways a report's text is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    PlainAttachment,
    Narrative,
    ConclusionOnly,
    HtmlAttachmentAndConclusion,
    FlattenedLatin1,
}

pub const RAD: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";

pub fn form(index: usize) -> Form {
    [
        Form::PlainAttachment,
        Form::Narrative,
        Form::ConclusionOnly,
        Form::HtmlAttachmentAndConclusion,
        Form::FlattenedLatin1,
    ][index % 5]
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn numbered(items: &[&str]) -> String {
    items
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{}. {t}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The report text with headers, line breaks intact.
pub fn full_text(exam_index: usize, amended: bool) -> String {
    let exam = &EXAMS[exam_index % EXAMS.len()];
    let mut impression: Vec<&str> = exam.impression.to_vec();
    if amended {
        impression.push("Addendum: a small left pleural effusion is also present.");
    }
    format!(
        "EXAM: {}\nHISTORY: {}\nTECHNIQUE: {}\nCOMPARISON: None.\nFINDINGS:\n{}\nIMPRESSION:\n{}\n",
        exam.display,
        exam.history,
        exam.technique,
        exam.findings.join("\n"),
        numbered(&impression)
    )
}

/// Seed report number `index` for `patient` (an id), with a client-chosen id.
pub fn report(id: &str, index: usize, patient: &str, amended: bool) -> Value {
    let exam = &EXAMS[index % EXAMS.len()];
    let minute = index % 60;
    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "status": if amended { "amended" } else { "final" },
        "category": [{"coding": [{"system": RAD, "code": "RAD", "display": "Radiology"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": exam.loinc, "display": exam.display}], "text": exam.display},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": format!("2026-03-{:02}T08:{minute:02}:00Z", 1 + index % 28),
        "issued": format!("2026-03-{:02}T09:{minute:02}:30.120+00:00", 1 + index % 28),
    });
    let mut impression: Vec<&str> = exam.impression.to_vec();
    if amended {
        impression.push("Addendum: a small left pleural effusion is also present.");
    }
    let text = full_text(index, amended);
    match form(index) {
        Form::PlainAttachment => {
            report["presentedForm"] = json!([{"contentType": "text/plain", "language": "en", "data": b64(text.as_bytes()), "title": "Report"}]);
        }
        Form::Narrative => {
            let paragraphs: String = text
                .lines()
                .map(|l| format!("<p>{}</p>", escape(l)))
                .collect();
            report["text"] = json!({"status": "additional", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{paragraphs}</div>")});
        }
        Form::ConclusionOnly => {
            report["conclusion"] = json!(numbered(&impression).replace('\n', " "));
        }
        Form::HtmlAttachmentAndConclusion => {
            let html: String = text
                .lines()
                .map(|l| format!("<p>{}</p>", escape(l)))
                .collect();
            report["presentedForm"] = json!([{"contentType": "text/html; charset=utf-8", "data": b64(format!("<html><body>{html}</body></html>").as_bytes())}]);
            report["conclusion"] = json!(impression[0]);
        }
        Form::FlattenedLatin1 => {
            // An export that flattened line breaks into ", " and sent Latin-1.
            let flat = format!(
                "{} Signed by Dr. XXXX, département XXXX.",
                text.trim_end().replace('\n', " ,")
            );
            let (latin1, _, _) = encoding_rs::WINDOWS_1252.encode(&flat);
            report["presentedForm"] =
                json!([{"contentType": "text/plain; charset=ISO-8859-1", "data": b64(&latin1)}]);
        }
    }
    report
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": "Testpatient", "given": ["Seed"]}], "gender": "unknown"})
}

/// A unique id prefix per test run (ids must be [A-Za-z0-9\-\.]{1,64}).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The patient and `n` reports, with ids `<prefix>-<i>`.
pub fn reports(prefix: &str, patient_id: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| report(&format!("{prefix}-{i}"), i, patient_id, false))
        .collect()
}
