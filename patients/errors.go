package patients

import "errors"

// ErrAmbiguous means a local patient id was issued by more than one authority to patients
// whose demographics differ, so the id alone does not say which patient is meant. Do not
// enrich from it; name the patient by NHS number to resolve it.
var ErrAmbiguous = errors.New("local patient id names more than one patient")
