// cvgl-edge: TensorRT IPluginV3 plugin for cvgl.SelectiveScan. See selective_scan_plugin.h.
#include "selective_scan_plugin.h"

#include "selective_scan.cuh"

#include <cstdio>
#include <cstring>
#include <limits>
#include <new>

using namespace nvinfer1;

namespace cvgl {
namespace {

constexpr char const* kName = "SelectiveScan";
constexpr char const* kVersion = "1";
constexpr char const* kNamespace = "cvgl";
constexpr int32_t kNbInputs = 8;
enum Input : int32_t { kU = 0, kDelta, kA, kB, kC, kD, kZ, kDeltaBias };

ILoggerFinder* gLoggerFinder = nullptr;

// TensorRT's logger when the loader gave us one (loadLibrary, trtexec --dynamicPlugins call
// setLoggerFinder), else stderr: a refused shape must never go unreported.
void logError(char const* msg) noexcept {
    ILogger* logger = gLoggerFinder ? gLoggerFinder->findLogger() : nullptr;
    if (logger) {
        logger->log(ILogger::Severity::kERROR, msg);
    } else {
        std::fprintf(stderr, "[cvgl] ERROR: %s\n", msg);
    }
}

// Two extents agree when equal or when either is not known yet (-1 while building).
bool agree(int64_t a, int64_t b) noexcept { return a < 0 || b < 0 || a == b; }

bool fitsInt32(int64_t extent) noexcept { return extent <= std::numeric_limits<int32_t>::max(); }

// What is wrong with the shapes of the eight inputs, or nullptr when they fit the contract:
// u, delta, z (B, Dc, L); A (Dc, N); B, C (B, N, L) with 1 <= N <= 16; D, delta_bias (Dc,).
// Unused placeholders (has_* = 0) are not looked at. The kernel indexes A with B's N and
// every tensor with u's extents, so any mismatch here would read out of bounds.
char const* shapeProblem(Dims const* d, ScanAttributes const& attrs) noexcept {
    Dims const& u = d[kU];
    if (u.nbDims != 3 || d[kDelta].nbDims != 3 || d[kB].nbDims != 3 || d[kC].nbDims != 3 ||
        (attrs.has_z && d[kZ].nbDims != 3))
        return "cvgl SelectiveScan: u, delta, z, B and C must be 3-D";
    if (d[kA].nbDims != 2 || (attrs.has_D && d[kD].nbDims != 1) ||
        (attrs.has_delta_bias && d[kDeltaBias].nbDims != 1))
        return "cvgl SelectiveScan: A must be 2-D, D and delta_bias 1-D";
    for (int32_t i = 0; i < 3; ++i) {
        if (!agree(d[kDelta].d[i], u.d[i]) || (attrs.has_z && !agree(d[kZ].d[i], u.d[i])))
            return "cvgl SelectiveScan: delta and z must have u's shape (batch, Dc, L)";
    }
    int64_t const n = d[kB].d[1];
    for (int32_t io : {kB, kC}) {
        if (!agree(d[io].d[0], u.d[0]) || !agree(d[io].d[2], u.d[2]))
            return "cvgl SelectiveScan: B and C must be (batch, N, L) with u's batch and L";
    }
    if (!agree(d[kC].d[1], n)) return "cvgl SelectiveScan: B and C must have the same state size N";
    if (n != -1 && (n < 1 || n > CVGL_SCAN_MAX_DSTATE)) return "cvgl SelectiveScan: state size N must be in 1..16";
    if (!agree(d[kA].d[0], u.d[1]) || !agree(d[kA].d[1], n) || !agree(d[kA].d[1], d[kC].d[1]))
        return "cvgl SelectiveScan: A must be (Dc, N) with u's Dc and the N of B and C";
    if ((attrs.has_D && !agree(d[kD].d[0], u.d[1])) || (attrs.has_delta_bias && !agree(d[kDeltaBias].d[0], u.d[1])))
        return "cvgl SelectiveScan: D and delta_bias must have length Dc";
    if (!fitsInt32(u.d[0]) || !fitsInt32(u.d[1]) || !fitsInt32(u.d[2]))
        return "cvgl SelectiveScan: batch, Dc and L must each fit in 32 bits";
    return nullptr;
}

// Logs ``problem`` (when there is one) and turns it into TensorRT's status code.
int32_t report(char const* problem) noexcept {
    if (!problem) return 0;
    logError(problem);
    return 1;
}

bool isFloatType(DataType t) noexcept {
    return t == DataType::kFLOAT || t == DataType::kHALF || t == DataType::kBF16;
}

int32_t toScanDtype(DataType t) noexcept {
    switch (t) {
        case DataType::kHALF: return CVGL_SCAN_FP16;
        case DataType::kBF16: return CVGL_SCAN_BF16;
        default: return CVGL_SCAN_FP32;
    }
}

// Reads one integer plugin field; the ONNX parser passes INT attributes as kINT32.
bool readInt(PluginField const& f, int32_t& value) noexcept {
    if (!f.data || f.length < 1) return false;
    switch (f.type) {
        case PluginFieldType::kINT32: value = *static_cast<int32_t const*>(f.data); return true;
        case PluginFieldType::kINT64: value = static_cast<int32_t>(*static_cast<int64_t const*>(f.data)); return true;
        case PluginFieldType::kINT16: value = *static_cast<int16_t const*>(f.data); return true;
        case PluginFieldType::kINT8: value = *static_cast<int8_t const*>(f.data); return true;
        default: return false;
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SelectiveScanPlugin

SelectiveScanPlugin::SelectiveScanPlugin(ScanAttributes const& attrs) : mAttrs(attrs) {}

IPluginCapability* SelectiveScanPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept {
    switch (type) {
        case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
        case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
        case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    }
    return nullptr;
}

IPluginV3* SelectiveScanPlugin::clone() noexcept {
    return new (std::nothrow) SelectiveScanPlugin(mAttrs);
}

char const* SelectiveScanPlugin::getPluginName() const noexcept { return kName; }
char const* SelectiveScanPlugin::getPluginVersion() const noexcept { return kVersion; }
char const* SelectiveScanPlugin::getPluginNamespace() const noexcept { return kNamespace; }

int32_t SelectiveScanPlugin::getNbOutputs() const noexcept { return 1; }

int32_t SelectiveScanPlugin::configurePlugin(DynamicPluginTensorDesc const* in, int32_t nbInputs,
    DynamicPluginTensorDesc const* out, int32_t nbOutputs) noexcept {
    if (nbInputs != kNbInputs || nbOutputs != 1 || !in || !out) {
        return report("cvgl SelectiveScan: expects 8 inputs and 1 output");
    }
    Dims dims[kNbInputs];
    for (int32_t i = 0; i < kNbInputs; ++i) dims[i] = in[i].desc.dims;
    return report(shapeProblem(dims, mAttrs));
}

int32_t SelectiveScanPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept {
    if (nbOutputs != 1 || nbInputs != kNbInputs || !outputTypes || !inputTypes) return 1;
    outputTypes[0] = inputTypes[kU];
    return 0;
}

int32_t SelectiveScanPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
    IExprBuilder& /*exprBuilder*/) noexcept {
    if (nbInputs != kNbInputs || nbOutputs != 1 || !inputs || !outputs) return 1;
    outputs[0] = inputs[kU];
    return 0;
}

// pos 0..7 are the inputs, 8 the output; decisions depend on inOut[0..pos] only.
bool SelectiveScanPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept {
    if (nbInputs != kNbInputs || nbOutputs != 1 || pos < 0 || pos > kNbInputs) return false;
    PluginTensorDesc const& d = inOut[pos].desc;
    if (d.format != TensorFormat::kLINEAR) return false;
    DataType const dataType = inOut[kU].desc.type;
    switch (pos) {
        case kU: return isFloatType(d.type);
        case kDelta:
        case kB:
        case kC:
        case kNbInputs:  // output
            return d.type == dataType;
        case kZ:
            // used: same dtype as u; unused (1,) placeholder: any float (the exporter writes it in u's dtype)
            return mAttrs.has_z ? d.type == dataType : isFloatType(d.type);
        case kA:
            // fp32 normally; a graph cast wholesale may carry A in u's dtype
            return d.type == DataType::kFLOAT || d.type == dataType;
        case kD:
        case kDeltaBias:
            // D and delta_bias share A's dtype when used (one param_dtype in the kernel)
            if ((pos == kD && !mAttrs.has_D) || (pos == kDeltaBias && !mAttrs.has_delta_bias))
                return isFloatType(d.type);
            return d.type == inOut[kA].desc.type;
        default: return false;
    }
}

size_t SelectiveScanPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept {
    return 0;
}

int32_t SelectiveScanPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* out, int32_t nbOutputs) noexcept {
    if (nbInputs != kNbInputs || nbOutputs != 1 || !in || !out) {
        return report("cvgl SelectiveScan: expects 8 inputs and 1 output");
    }
    Dims dims[kNbInputs];
    for (int32_t i = 0; i < kNbInputs; ++i) {
        dims[i] = in[i].dims;
        for (int32_t k = 0; k < dims[i].nbDims; ++k) {
            if (dims[i].d[k] < 0) return report("cvgl SelectiveScan: a runtime shape is not fully known");
        }
    }
    return report(shapeProblem(dims, mAttrs));
}

int32_t SelectiveScanPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
    void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept {
    Dims const& u = inputDesc[kU].dims;
    Dims const& b = inputDesc[kB].dims;
    SelectiveScanParams p;
    std::memset(&p, 0, sizeof(p));
    p.abi_version = CVGL_SCAN_ABI_VERSION;
    p.dtype = toScanDtype(inputDesc[kU].type);
    p.param_dtype = toScanDtype(inputDesc[kA].type);
    p.batch = static_cast<int32_t>(u.d[0]);
    p.dim = static_cast<int32_t>(u.d[1]);
    p.seqlen = static_cast<int32_t>(u.d[2]);
    p.dstate = static_cast<int32_t>(b.d[1]);
    p.direction = mAttrs.direction;
    p.delta_softplus = mAttrs.delta_softplus;
    p.has_D = mAttrs.has_D;
    p.has_z = mAttrs.has_z;
    p.has_delta_bias = mAttrs.has_delta_bias;
    cvgl_selective_scan_set_contiguous_strides(&p);  // TensorRT linear format is contiguous
    p.u = inputs[kU];
    p.delta = inputs[kDelta];
    p.A = inputs[kA];
    p.B = inputs[kB];
    p.C = inputs[kC];
    p.D = mAttrs.has_D ? inputs[kD] : nullptr;
    p.z = mAttrs.has_z ? inputs[kZ] : nullptr;
    p.delta_bias = mAttrs.has_delta_bias ? inputs[kDeltaBias] : nullptr;
    p.out = outputs[0];
    int const rc = cvgl_selective_scan_forward(&p, stream);
    if (rc != CVGL_SCAN_OK) {
        logError(cvgl_selective_scan_error_string(rc));
        return 1;
    }
    return 0;
}

IPluginV3* SelectiveScanPlugin::attachToContext(IPluginResourceContext* /*context*/) noexcept {
    return clone();
}

PluginFieldCollection const* SelectiveScanPlugin::getFieldsToSerialize() noexcept {
    mSerialFields.clear();
    mSerialFields.emplace_back("direction", &mAttrs.direction, PluginFieldType::kINT32, 1);
    mSerialFields.emplace_back("delta_softplus", &mAttrs.delta_softplus, PluginFieldType::kINT32, 1);
    mSerialFields.emplace_back("has_D", &mAttrs.has_D, PluginFieldType::kINT32, 1);
    mSerialFields.emplace_back("has_z", &mAttrs.has_z, PluginFieldType::kINT32, 1);
    mSerialFields.emplace_back("has_delta_bias", &mAttrs.has_delta_bias, PluginFieldType::kINT32, 1);
    mSerialCollection.nbFields = static_cast<int32_t>(mSerialFields.size());
    mSerialCollection.fields = mSerialFields.data();
    return &mSerialCollection;
}

// ---------------------------------------------------------------------------------------------
// SelectiveScanPluginCreator

SelectiveScanPluginCreator::SelectiveScanPluginCreator() {
    for (char const* name : {"direction", "delta_softplus", "has_D", "has_z", "has_delta_bias"}) {
        mFields.emplace_back(name, nullptr, PluginFieldType::kINT32, 1);
    }
    mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
    mFieldCollection.fields = mFields.data();
}

char const* SelectiveScanPluginCreator::getPluginName() const noexcept { return kName; }
char const* SelectiveScanPluginCreator::getPluginVersion() const noexcept { return kVersion; }
char const* SelectiveScanPluginCreator::getPluginNamespace() const noexcept { return kNamespace; }
PluginFieldCollection const* SelectiveScanPluginCreator::getFieldNames() noexcept { return &mFieldCollection; }

IPluginV3* SelectiveScanPluginCreator::createPlugin(
    char const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept {
    // Absent fields keep the contract defaults (scan_contract.INT_ATTRIBUTES). The same path
    // serves build (fields from the ONNX node) and runtime (fields from getFieldsToSerialize).
    ScanAttributes attrs;
    if (fc) {
        for (int32_t i = 0; i < fc->nbFields; ++i) {
            PluginField const& f = fc->fields[i];
            if (!f.name) continue;
            int32_t* target = nullptr;
            if (!std::strcmp(f.name, "direction")) target = &attrs.direction;
            else if (!std::strcmp(f.name, "delta_softplus")) target = &attrs.delta_softplus;
            else if (!std::strcmp(f.name, "has_D")) target = &attrs.has_D;
            else if (!std::strcmp(f.name, "has_z")) target = &attrs.has_z;
            else if (!std::strcmp(f.name, "has_delta_bias")) target = &attrs.has_delta_bias;
            if (target && !readInt(f, *target)) {
                logError("cvgl SelectiveScan: integer field with an unexpected type");
                return nullptr;
            }
        }
    }
    for (int32_t flag : {attrs.direction, attrs.delta_softplus, attrs.has_D, attrs.has_z, attrs.has_delta_bias}) {
        if (flag != 0 && flag != 1) {
            logError("cvgl SelectiveScan: direction, delta_softplus, has_D, has_z and has_delta_bias must be 0 or 1");
            return nullptr;
        }
    }
    return new (std::nothrow) SelectiveScanPlugin(attrs);
}

}  // namespace cvgl

// -------------------------------------------------------------------------------------------------
// Library entry points

namespace {
cvgl::SelectiveScanPluginCreator& creatorInstance() {
    static cvgl::SelectiveScanPluginCreator sCreator;
    return sCreator;
}
}  // namespace

extern "C" void setLoggerFinder(nvinfer1::ILoggerFinder* finder) {
    cvgl::gLoggerFinder = finder;
}

extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& nbCreators) {
    static nvinfer1::IPluginCreatorInterface* const sCreators[] = {&creatorInstance()};
    nbCreators = 1;
    return sCreators;
}
