"""The prediction index: whose each paid prediction was, once Replicate has removed its input."""

from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline.storage.layout import PREDICTION_PREFIX, ActorLayout
from actor_pipeline.storage.prediction_index import Owner, index_predictions, prediction_owners, validation_of

ALICE, BOB = ActorLayout("studio", "alice"), ActorLayout("studio", "bob")


def test_each_prediction_names_its_actor_and_what_it_was_made_for(storage: FolderStorage) -> None:
    index_predictions(storage, ALICE, "woodcut", ["p1", "p2"])
    index_predictions(storage, BOB, validation_of("t9"), ["p3", "../escape"])  # not a provider id: not indexed
    storage.put(f"{PREDICTION_PREFIX}p4.json", b"{not json", "application/json")  # garbled: tells nothing

    owners = prediction_owners(storage, ["p1", "p2", "p3", "p4", "p5", "../escape"])
    assert owners == {
        "p1": Owner("studio", "alice", "woodcut"),
        "p2": Owner("studio", "alice", "woodcut"),
        "p3": Owner("studio", "bob", "validation:t9"),
    }
    assert owners["p1"].of(ALICE) and not owners["p3"].of(ALICE)
    assert owners["p3"].validated_training == "t9" and owners["p1"].validated_training is None
