// File: src/reconcile/informer_source.h
//
// Adapts a kube::SharedInformer<T> (PodView, NodeView, GenericObject, ...)
// to the EventSource a Controller consumes: every add, update and delete
// becomes a ChangedObject carrying namespace, name and owner references.
//
//   auto nodes = factory.Informer(kube::resources::kNodes, kube::NodeViewCodec());
//   InformerSource<kube::NodeView> node_source(nodes);
//   controller.For(node_source);
//
// Resyncs (on_update with the same object) are delivered too, so periodic
// resync re-reconciles everything, as in controller-runtime.
//
// Thread-safety: Subscribe before the informer starts delivering to the
// controller; callbacks run on the informer's dispatch thread.
#pragma once

#include <memory>
#include <utility>

#include "kube/shared_informer.h"
#include "reconcile/controller.h"

namespace gpu_autoscaler::reconcile {

template <typename T>
ChangedObject ToChangedObject(const T& obj) {
  ChangedObject out{std::string(obj.ns()), std::string(obj.name()), {}};
  if constexpr (requires { obj.owner_references(); }) {
    for (const auto& ref : obj.owner_references()) {
      out.owners.push_back(OwnerInfo{std::string(ref.api_version.view()),
                                     std::string(ref.kind.view()), std::string(ref.name),
                                     ref.controller});
    }
  }
  return out;
}

template <typename T>
class InformerSource final : public EventSource {
 public:
  explicit InformerSource(std::shared_ptr<kube::SharedInformer<T>> informer)
      : informer_(std::move(informer)) {}

  void Subscribe(std::function<void(const ChangedObject&)> on_change) override {
    auto shared = std::make_shared<std::function<void(const ChangedObject&)>>(std::move(on_change));
    using Ptr = typename kube::SharedInformer<T>::ObjectPtr;
    informer_->AddEventHandler(kube::EventHandler<T>{
        .on_add = [shared](const Ptr& obj) { (*shared)(ToChangedObject(*obj)); },
        .on_update = [shared](const Ptr&, const Ptr& obj) { (*shared)(ToChangedObject(*obj)); },
        .on_delete = [shared](const Ptr& obj, bool) { (*shared)(ToChangedObject(*obj)); },
    });
  }
  bool HasSynced() const override { return informer_->HasSynced(); }

 private:
  std::shared_ptr<kube::SharedInformer<T>> informer_;
};

}  // namespace gpu_autoscaler::reconcile
