package patients

import "errors"

// ErrAmbiguous means a local patient id was issued by more than one authority to patients
// whose demographics differ, so the id alone does not say which patient is meant. Do not
// enrich from it; name the patient by NHS number to resolve it.
var ErrAmbiguous = errors.New("local patient id names more than one patient")

// ErrStoreUnavailable means the demographics store could not be read or written now
// (JetStream unavailable, a timeout, the stage not started). Retry later; the data is not at
// fault.
var ErrStoreUnavailable = errors.New("demographics store unavailable")

// ErrAlreadyRunning is returned by Run while another call of Run is running.
var ErrAlreadyRunning = errors.New("patients stage already running")
