"""The review of a render: THE render document, who speaks when (segments, RTTM), ground truth, the page."""
