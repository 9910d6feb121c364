//! Laterality discrepancies (Findings and Impression give the same finding
//! different sides) on short reports written for this test: every one found,
//! none invented. Half state a wrong side in as many ways as radiologists
//! write sides (words before or after, "-sided", "R"/"L" before an
//! anatomical word, quadrant and lobe abbreviations, organ sub-headers, more
//! or less specific restatements, swapped sides of a finding stated on both
//! sides); the other half are consistent reports that would trap a careless
//! checker (different findings on each side, cardiac chambers, directions
//! of a shift, bilateral findings restated per side, spine levels, "R/O").

use reportsplit_split::{DiscrepancyKind, Lexicon, extract};

/// Reports whose Impression gives a finding the other side than Findings.
const DISCREPANT: &[&str] = &[
    "FINDINGS: Small left pleural effusion. No pneumothorax.\nIMPRESSION: Small right pleural effusion.",
    "FINDINGS: There is a 6 mm nonobstructing calculus in the lower pole of the right kidney.\nIMPRESSION: 6 mm nonobstructing calculus in the left kidney.",
    "FINDINGS: Left-sided pneumothorax measuring 2 cm at the apex.\nIMPRESSION: Moderate right-sided pneumothorax.",
    "FINDINGS: R lower lobe consolidation with air bronchograms.\nIMPRESSION: Left lower lobe consolidation, likely pneumonia.",
    "FINDINGS: Acute infarct in the L cerebellar hemisphere with restricted diffusion.\nIMPRESSION: Acute right cerebellar infarct.",
    "FINDINGS: A 4 cm fluid collection in the LUQ.\nIMPRESSION: 4 cm right upper quadrant fluid collection, possibly an abscess.",
    "FINDINGS: Small amount of free fluid in the LLQ.\nIMPRESSION: Small amount of free fluid in the right lower quadrant.",
    "FINDINGS: 7 mm solid nodule in the RUL.\nIMPRESSION: 7 mm left upper lobe nodule.",
    "FINDINGS: Patchy opacity in the LLL.\nIMPRESSION: Right lower lobe opacity, may represent atelectasis or pneumonia.",
    "FINDINGS: Subsegmental atelectasis in the RML.\nIMPRESSION: Left lower lobe atelectasis.",
    "FINDINGS:\nRight kidney: 10.8 cm. A 2.3 cm simple cyst in the upper pole.\nLeft kidney: 11.2 cm. No hydronephrosis.\nIMPRESSION: 2.3 cm simple cyst in the left kidney.",
    "FINDINGS: Fracture of the right distal radius.\nIMPRESSION: Comminuted intra-articular left distal radius fracture.",
    "FINDINGS: Acute nondisplaced fracture of the base of the left fifth metatarsal.\nIMPRESSION: Right foot fracture.",
    "FINDINGS: 12 mm nodule in the right upper lobe. 4 mm nodule in the left upper lobe, unchanged.\nIMPRESSION: 12 mm left upper lobe nodule.",
    "FINDINGS: Right internal carotid artery stenosis of 80%. Left internal carotid artery stenosis of less than 50%.\nIMPRESSION: 1. 80% left internal carotid artery stenosis. 2. Less than 50% right internal carotid artery stenosis.",
    "FINDINGS: Large right pleural effusion. Small left pleural effusion.\nIMPRESSION: Large left pleural effusion and small right pleural effusion.",
    "FINDINGS: Moderate right hydronephrosis with a 5 mm obstructing stone at the ureterovesical junction.\nIMPRESSION: Moderate left hydronephrosis due to an obstructing distal ureteral stone.",
    "FINDINGS: Occlusive thrombus within the right great saphenous vein in the thigh.\nIMPRESSION: Superficial thrombophlebitis of the left great saphenous vein.",
    "FINDINGS: 8 MM NODULE IN THE R LOWER LOBE.\nIMPRESSION: 8 MM LEFT LOWER LOBE NODULE.",
    "FINDINGS: Subdural hematoma along the convexity on the right, 8 mm thick.\nIMPRESSION: 8 mm left convexity subdural hematoma.",
    "FINDINGS: Right adrenal nodule measuring 1.8 cm.\nIMPRESSION: 1.8 cm L adrenal nodule.",
    "FINDINGS: In the left breast at 10 o'clock there is a 9 mm irregular mass.\nIMPRESSION: 9 mm irregular mass in the right breast. BI-RADS 4.",
    "FINDINGS:\nRIGHT OVARY: 3.1 x 2.4 cm. A 2.2 cm hemorrhagic cyst.\nLEFT OVARY: 2.5 x 1.8 cm. Normal.\nIMPRESSION: 2.2 cm left hemorrhagic ovarian cyst.",
    "FINDINGS: New 6 mm nodule in the right upper lobe. Stable 4 mm nodule in the left upper lobe.\nIMPRESSION: New 6 mm left upper lobe nodule.",
    "FINDINGS:\nRight carotid: Mild heterogeneous plaque at the bulb.\nLeft carotid: Hypoechoic plaque at the bulb with 80% stenosis.\nIMPRESSION: Right ICA stenosis with irregular hypoechoic plaque.",
    "FINDINGS:\nLeft breast, 10 o'clock, 4 cm from the nipple: oval hypoechoic mass measuring 1.2 cm.\nIMPRESSION: Probably benign 1.2 cm mass in the right breast at 10 o'clock.",
];

/// Reports whose sides agree, though both sides are named.
const CONSISTENT: &[&str] = &[
    "FINDINGS: Focal intense uptake in the right iliac bone, concerning for metastasis.\nIMPRESSION: Hypermetabolic left upper lobe primary, 4.2 cm.",
    "FINDINGS: Right frontal metastasis. Surrounding vasogenic edema results in 6 mm of leftward midline shift.\nIMPRESSION: Right frontal metastasis with vasogenic edema and midline shift.",
    "FINDINGS:\nRIGHT:\nHeterogeneous, partially calcified plaque at the carotid bulb.\nLEFT:\nSmall calcified plaque at the bulb.\nIMPRESSION: Right ICA stenosis with heterogeneous plaque.",
    "FINDINGS: Right lower lobe consolidation. Small left pleural effusion.\nIMPRESSION: Right lower lobe pneumonia with small left pleural effusion.",
    "FINDINGS: Acute pulmonary embolism in the left lower lobe pulmonary arteries. RV/LV ratio of 1.3 with right heart strain.\nIMPRESSION: Left lower lobe pulmonary embolism with right heart strain.",
    "FINDINGS: Left ventricular hypertrophy. Small right pleural effusion.\nIMPRESSION: Left ventricular hypertrophy. Small right pleural effusion.",
    "FINDINGS: Right subdural hematoma measuring 12 mm with 6 mm of midline shift to the left.\nIMPRESSION: Right subdural hematoma with leftward midline shift.",
    "FINDINGS: Bilateral pleural effusions, larger on the right.\nIMPRESSION: Bilateral pleural effusions, right larger than left.",
    "FINDINGS: Bilateral pleural effusions.\nIMPRESSION: Moderate right and small left pleural effusions.",
    "FINDINGS: Left renal cyst measuring 2 cm. Right renal calculus measuring 4 mm.\nIMPRESSION: 1. Left renal cyst. 2. Right nonobstructing renal calculus.",
    "FINDINGS: Nodule in the right thyroid lobe measuring 1.2 cm. The left lobe is normal.\nIMPRESSION: 1.2 cm right thyroid nodule.",
    "FINDINGS: 6 mm nodule in the RUL.\nIMPRESSION: 6 mm right upper lobe nodule.",
    "FINDINGS: At L4-5 there is a left paracentral disc protrusion. At L5-S1 there is a right foraminal disc protrusion.\nIMPRESSION: Left paracentral disc protrusion at L4-5 and right foraminal disc protrusion at L5-S1.",
    "FINDINGS: Left lower lobe opacity.\nIMPRESSION: Left lower lobe opacity. R/O pneumonia.",
    "FINDINGS: Right pleural effusion, 1 L removed at thoracentesis.\nIMPRESSION: Right pleural effusion.",
    "FINDINGS:\nRight kidney: 11 cm. No hydronephrosis.\nLeft kidney: 10.5 cm. A 1.2 cm simple cyst in the lower pole.\nIMPRESSION: 1.2 cm simple left renal cyst.",
    "FINDINGS: 9 mm nodule in the right upper lobe. 4 mm nodule in the left lower lobe.\nIMPRESSION: 9 mm right upper lobe nodule.",
    "FINDINGS: Right lower lobe nodule. Left lower lobe nodule.\nIMPRESSION: Left lower lobe nodule.",
    "FINDINGS: Right internal carotid artery stenosis of 80%. Left internal carotid artery stenosis of less than 50%.\nIMPRESSION: 1. 80% right internal carotid artery stenosis. 2. Less than 50% left internal carotid artery stenosis.",
    "FINDINGS: Large right pleural effusion. Small left pleural effusion.\nIMPRESSION: Large right pleural effusion and small left pleural effusion.",
    "FINDINGS: Left atrial enlargement. Small right pleural effusion.\nIMPRESSION: Left atrial enlargement. Small right effusion.",
    "FINDINGS: The right kidney is small, measuring 8.1 cm compared with 11.2 cm on the left.\nIMPRESSION: Small right kidney.",
    "FINDINGS: Right renal calculus measuring 5 mm. No left renal calculus.\nIMPRESSION: 5 mm right renal calculus. No left hydronephrosis.",
    "FINDINGS: Left breast: 8 mm oval circumscribed mass at 3 o'clock. Right breast: grouped amorphous calcifications at 11 o'clock.\nIMPRESSION: 1. Left breast mass. 2. Right breast calcifications. Stereotactic biopsy is recommended.",
    "FINDINGS: Mild dextroscoliosis of the thoracic spine. Left lower lobe atelectasis.\nIMPRESSION: Left lower lobe atelectasis.",
    "FINDINGS: 2.1 cm cyst in the left kidney. 5 mm cyst in the right kidney.\nIMPRESSION: 2.1 cm left renal cyst.",
    "FINDINGS: New 5 mm right upper lobe nodule. Stable 5 mm left upper lobe nodule.\nIMPRESSION: Stable left upper lobe nodule. New right upper lobe nodule.",
    "FINDINGS: Right lower lobe pneumonia. Patient on 2 L nasal cannula.\nIMPRESSION: Right lower lobe pneumonia.",
    "FINDINGS: The R and L kidneys are normal in size. A 1.5 cm left renal cyst.\nIMPRESSION: 1.5 cm left renal cyst.",
    "FINDINGS: Status post R TKA. Small joint effusion. Left knee: moderate osteoarthritis.\nIMPRESSION: Moderate left knee osteoarthritis.",
    "FINDINGS: Moderate right pleural effusion. Small left pleural effusion.\nIMPRESSION: Bilateral pleural effusions, moderate on the right.",
    "FINDINGS: An irregular mass in the left breast with associated calcifications. In the right breast, scattered vascular calcifications.\nIMPRESSION: Irregular left breast mass with associated calcifications.",
];

fn flags_a_side(text: &str, lexicon: &Lexicon) -> bool {
    extract(text, lexicon)
        .discrepancies
        .iter()
        .any(|d| d.kind == DiscrepancyKind::Laterality)
}

#[test]
fn every_wrong_side_is_found_and_none_is_invented() {
    let lexicon = Lexicon::builtin();
    let missed: Vec<&str> = DISCREPANT
        .iter()
        .copied()
        .filter(|text| !flags_a_side(text, &lexicon))
        .collect();
    let invented: Vec<&str> = CONSISTENT
        .iter()
        .copied()
        .filter(|text| flags_a_side(text, &lexicon))
        .collect();
    println!(
        "laterality discrepancies: found {} of {}, invented {} of {}",
        DISCREPANT.len() - missed.len(),
        DISCREPANT.len(),
        invented.len(),
        CONSISTENT.len()
    );
    assert!(
        missed.is_empty() && invented.is_empty(),
        "missed: {missed:#?}\ninvented: {invented:#?}"
    );
}
