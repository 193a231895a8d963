// cvgl-edge: TensorRT IPluginV3 plugin for the cvgl.SelectiveScan ONNX node.
//
// Creator: name "SelectiveScan", version "1", namespace "cvgl" (cvgl_edge/export/scan_contract.py).
// Inputs (always 8): u, delta, A, B, C, D, z, delta_bias; output y with u's shape.
// Fields (int32, from the ONNX node's int attributes): direction, delta_softplus, has_D, has_z,
// has_delta_bias. Written against the TensorRT 10.x IPluginV3 API (10.3 = JetPack 6 .. 11.x).
#pragma once

#include <NvInfer.h>
#include <NvInferRuntime.h>
#include <NvInferRuntimePlugin.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cvgl {

struct ScanAttributes {
    int32_t direction = 0;
    int32_t delta_softplus = 0;
    int32_t has_D = 1;
    int32_t has_z = 1;
    int32_t has_delta_bias = 1;
};

class SelectiveScanPlugin final : public nvinfer1::IPluginV3,
                                  public nvinfer1::IPluginV3OneCore,
                                  public nvinfer1::IPluginV3OneBuild,
                                  public nvinfer1::IPluginV3OneRuntime {
public:
    explicit SelectiveScanPlugin(ScanAttributes const& attrs);
    ~SelectiveScanPlugin() override = default;

    // IPluginV3
    nvinfer1::IPluginCapability* getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override;
    nvinfer1::IPluginV3* clone() noexcept override;

    // IPluginV3OneCore
    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;

    // IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override;
    int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t getOutputDataTypes(nvinfer1::DataType* outputTypes, int32_t nbOutputs,
        nvinfer1::DataType const* inputTypes, int32_t nbInputs) const noexcept override;
    int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nbInputs,
        nvinfer1::DimsExprs const* shapeInputs, int32_t nbShapeInputs, nvinfer1::DimsExprs* outputs,
        int32_t nbOutputs, nvinfer1::IExprBuilder& exprBuilder) noexcept override;
    bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* inOut,
        int32_t nbInputs, int32_t nbOutputs) noexcept override;
    size_t getWorkspaceSize(nvinfer1::DynamicPluginTensorDesc const* inputs, int32_t nbInputs,
        nvinfer1::DynamicPluginTensorDesc const* outputs, int32_t nbOutputs) const noexcept override;

    // IPluginV3OneRuntime
    int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nbInputs,
        nvinfer1::PluginTensorDesc const* out, int32_t nbOutputs) noexcept override;
    int32_t enqueue(nvinfer1::PluginTensorDesc const* inputDesc, nvinfer1::PluginTensorDesc const* outputDesc,
        void const* const* inputs, void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
    nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

    ScanAttributes const& attributes() const noexcept { return mAttrs; }

private:
    ScanAttributes mAttrs;
    std::vector<nvinfer1::PluginField> mSerialFields;
    nvinfer1::PluginFieldCollection mSerialCollection{};
};

class SelectiveScanPluginCreator final : public nvinfer1::IPluginCreatorV3One {
public:
    SelectiveScanPluginCreator();
    ~SelectiveScanPluginCreator() override = default;

    char const* getPluginName() const noexcept override;
    char const* getPluginVersion() const noexcept override;
    char const* getPluginNamespace() const noexcept override;
    nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override;
    nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
        nvinfer1::TensorRTPhase phase) noexcept override;

private:
    std::vector<nvinfer1::PluginField> mFields;
    nvinfer1::PluginFieldCollection mFieldCollection{};
};

}  // namespace cvgl

// Plugin-library entry points, the two that IPluginRegistry::loadLibrary, trtexec
// --dynamicPlugins and Python's trt.get_plugin_registry().load_library look up. Neither needs a
// libnvinfer symbol, so one library serves every TensorRT from 10.3 to 11.x (it links no
// libnvinfer; export/CMakeLists.txt links with --no-undefined to keep it that way).
#if defined(_WIN32)
#define CVGL_PLUGIN_API __declspec(dllexport)
#else
#define CVGL_PLUGIN_API __attribute__((visibility("default")))
#endif
extern "C" {
CVGL_PLUGIN_API void setLoggerFinder(nvinfer1::ILoggerFinder* finder);
CVGL_PLUGIN_API nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators);
}
