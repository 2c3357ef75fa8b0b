// Youth codes such as "quiet-river-07": easy to say and to type, and
// carrying nothing about the youth (the record schemas' pattern
// ^[a-z]{1,16}-[a-z]{1,16}-[0-9]{2}$).
const ADJECTIVES = [
  "amber", "brave", "bright", "calm", "clear", "quiet", "gentle", "golden", "green", "happy",
  "kind", "lively", "lucky", "misty", "proud", "quick", "silver", "steady", "sunny", "swift",
  "tall", "warm", "wild", "wise", "young", "bold", "cool", "fresh", "noble", "rapid", "soft", "true",
];
const NOUNS = [
  "river", "cloud", "stone", "maple", "harbor", "meadow", "falcon", "comet", "canyon", "forest",
  "island", "lake", "mountain", "ocean", "orchid", "pebble", "prairie", "rain", "reef", "ridge",
  "sparrow", "star", "summit", "thunder", "tide", "valley", "willow", "wind", "cedar", "dune", "fern", "glade",
];

function pick(list) {
  const index = crypto.getRandomValues(new Uint32Array(1))[0] % list.length;
  return list[index];
}

export function newYouthCode() {
  const number = String(crypto.getRandomValues(new Uint32Array(1))[0] % 100).padStart(2, "0");
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${number}`;
}
