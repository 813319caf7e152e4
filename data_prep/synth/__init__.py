"""A synthetic AVA-format world: drawn talking faces, speech-like audio, hard negatives, mouth boxes."""
